"""`runner run` with the claude-code brain vs a bare `claude -p` of the same prompt.

All talk to the fake Messages API (tests/fake_anthropic.py) on 127.0.0.1 with zero
latency, with Claude Code's non-essential traffic off and an empty Claude Code config
(HOME) of their own; each run gets the same scripted answer, and the server counts
the requests each side makes. Timed alternately, one of each per round:

- `runner run`: the runner with `brain.provider: claude-code` (Python, the runner, the
  Claude Agent SDK, then the bundled CLI, started before the SDK is imported);
- `claude -p`: the same bundled CLI, called directly with the runner's prompt and model;
- `claude -p` with the runner's flags: also its system-prompt text, no tools, no
  settings files, no saved session (what the runner asks of the CLI, in text mode);
- `import claude_agent_sdk`: a Python process that only imports the SDK, the part of
  `runner run` no overlap can hide;
- a bare SDK script: Python calling the SDK's `query()` with the runner's options (the
  SDK's own transport: import first, then start the CLI);
- a warm run, as `runner watch` makes one: a long-lived process that has imported the
  runner and the SDK once runs the task (executor, lock, log append) on each request.

Target: runner / `claude -p` <= 1.1.
Usage: python bench/bench_claude_code.py [ROUNDS]   (default 10, about two minutes)
BENCH_BEFORE=<a checkout's folder> adds its `runner run` to the rounds (before/after).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, machine, median
from runner.brain.claude_code_setup import QUIET_ENV, UNATTENDED, settings_json
from runner.home import Home
from runner.init import init_home
from tests.fake_anthropic import FakeAnthropic, Reply

TASK = """\
title: Bench
instructions: |
  Summarise the three most important open items from my notes.
"""
PROMPT = "Summarise the three most important open items from my notes.\n\n---\nTitle: Bench"

SETTINGS = """\
brain:
  provider: claude-code
  max_retries: 0
compression:
  max_executions: 100000
"""

# The SDK alone, with the options the runner passes for a run without grants.
BARE_SDK = """\
import json, sys
import anyio
from claude_agent_sdk import ClaudeAgentOptions, query
prompt, home = sys.argv[1], sys.argv[2]
options = ClaudeAgentOptions(
    cwd=home, model="claude-sonnet-5-5", tools=[], permission_mode="dontAsk",
    system_prompt={"type": "preset", "preset": "claude_code", "append": "You run unattended."},
    setting_sources=[], strict_mcp_config=True, include_partial_messages=True,
    verbatim_prompts=True, extra_args={"no-session-persistence": None},
    settings=json.dumps({"autoMemoryEnabled": False, "includeGitInstructions": False}),
)
async def main():
    async for message in query(prompt=prompt, options=options):
        event = getattr(message, "event", None) or {}
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            sys.stdout.write(delta["text"])
            sys.stdout.flush()
anyio.run(main)
sys.stdout.write("\\n")
"""

# A watch-like process: the imports paid once, then one run per line on stdin.
WARM = """\
import sys
from pathlib import Path
from runner.brain.claude_code import ClaudeCodeBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.run.executor import run_task
from runner.settings import load_settings
home = Home(Path(sys.argv[1]))
settings = load_settings(home.settings_file)
brain = ClaudeCodeBrain(settings.brain, home.root)
brain.warm()
print("ready", flush=True)
for line in sys.stdin:
    (home.logs / "bench.jsonl").unlink(missing_ok=True)
    outcome = run_task(home, settings, "bench", brain, SystemClock())
    print(outcome.status, "Item 59" in (outcome.record.response or ""), flush=True)
"""

# What `runner run` cannot hide: the SDK's import, as the runner makes it (gc paused).
IMPORT_ONLY = "import gc; gc.disable(); import claude_agent_sdk"

ANSWER = [f"Item {n}: something that still needs doing. " for n in range(60)]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path, answer: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv` in `cwd`."""
    cpu, start = cpu_seconds(), time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, env=env, cwd=cwd, check=False, stdin=subprocess.DEVNULL
    )
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if done.returncode != 0 or (answer and b"Item 59" not in done.stdout):
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, cpu


def commands(root: Path, cli_path: Path, bare_file: Path) -> dict[str, list[str]]:
    model = ["--model", "claude-sonnet-5-5"]
    flags = ["--append-system-prompt", UNATTENDED, "--tools", "", "--max-turns", "20"]
    flags += ["--permission-mode", "dontAsk", "--settings", json.dumps(settings_json())]
    flags += ["--strict-mcp-config", "--setting-sources=", "--no-session-persistence"]
    return {
        "runner run": [PY, "-m", "runner", "--home", str(root), "run", "bench"],
        **before(root),
        "claude -p": [str(cli_path), "-p", PROMPT, *model],
        "claude -p, runner's flags": [str(cli_path), "-p", PROMPT, *model, *flags],
        "import claude_agent_sdk": [PY, "-c", IMPORT_ONLY],
        "bare SDK script": [PY, str(bare_file), PROMPT, str(root)],
    }


def before(root: Path) -> dict[str, list[str]]:
    """With BENCH_BEFORE naming another checkout (its folder holding `runner/`), its
    `runner run` and this one's, both started the same way (the checkout put first on
    sys.path), for before/after figures in the same alternating rounds."""
    other = os.environ.get("BENCH_BEFORE")
    if not other:
        return {}
    here = str(Path(__file__).resolve().parent.parent)
    argvs = {}
    for name, folder in (("runner run (before)", other), ("runner run (after)", here)):
        code = f"import sys; sys.path.insert(0, {folder!r}); from runner.cli.main import main"
        code += "; main()"
        argvs[name] = [PY, "-c", code, "--home", str(root), "run", "bench"]
    return argvs


def warm_run(warm: subprocess.Popen[str]) -> float:
    assert warm.stdin is not None and warm.stdout is not None
    start = time.perf_counter()
    warm.stdin.write("run\n")
    warm.stdin.flush()
    if warm.stdout.readline().strip() != "completed True":
        raise SystemExit("the warm run failed")
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    import claude_agent_sdk

    cli_path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    root = OUT / "claude-code-home"
    config = OUT / "claude-code-config"
    for folder in (root, config):
        if folder.exists():
            shutil.rmtree(folder)
    config.mkdir(parents=True)
    home = Home(root)
    init_home(home)
    home.settings_file.write_text(SETTINGS, encoding="utf-8")
    (home.tasks / "bench.yaml").write_text(TASK, encoding="utf-8")
    # A home is a git repository of its own (Claude Code reads its status on start).
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench home"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    bare_file = OUT / "bare_claude_code_sdk.py"
    bare_file.write_text(BARE_SDK, encoding="utf-8")

    with FakeAnthropic() as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "RUNNER_"))}
        env.update({**api.env(), **QUIET_ENV, "HOME": str(config), "CLAUDE_CODE_MAX_RETRIES": "0"})
        argvs = commands(root, cli_path, bare_file)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in argvs}
        requests: dict[str, list[int]] = {name: [] for name in [*argvs, WARM_NAME]}
        warm = subprocess.Popen(
            [PY, "-c", WARM, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            cwd=root,
            text=True,
        )
        assert warm.stdout is not None and warm.stdout.readline().strip() == "ready"
        times[WARM_NAME] = []
        for n in range(rounds + 1):  # round 0 is a warm-up
            (home.logs / "bench.jsonl").unlink(missing_ok=True)  # each run: no history
            for name, argv in [*argvs.items(), (WARM_NAME, [])]:
                answer = name != "import claude_agent_sdk"
                if answer:
                    api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))
                before = len(api.requests)
                pair = (warm_run(warm), 0.0) if not argv else timed(argv, env, root, answer)
                if n:
                    times[name].append(pair)
                    requests[name].append(len(api.requests) - before)
        assert warm.stdin is not None
        warm.stdin.close()
        warm.wait()
        steps = [timeline(argvs, env, root, api) for _ in range(rounds)]
    report(times, requests, rounds, cli_version(cli_path))
    print("where the time goes (ms from the start of the process, medians; separate runs):")
    for name in steps[0]:
        values = sorted(step[name] for step in steps)
        low, high = values[0] * 1000, values[-1] * 1000
        print(f"  {name:34s} {median(values) * 1000:7.1f}  ({low:.0f} .. {high:.0f})")


def timeline(
    argvs: dict[str, list[str]], env: dict[str, str], root: Path, api: FakeAnthropic
) -> dict[str, float]:
    """One `runner --debug run` and one `claude -p`: when each step was reached, read
    from the runner's debug lines as they arrive and the server's own clock."""
    steps: dict[str, float] = {}
    (root / "logs" / "bench.jsonl").unlink(missing_ok=True)
    api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))
    argv = argvs["runner run"]
    before = len(api.timings)
    start = time.perf_counter()
    runner = subprocess.Popen(
        [*argv[:3], "--debug", *argv[3:]], env=env, cwd=root, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert runner.stderr is not None
    for line in runner.stderr:
        for mark in ("CLI started", "SDK imported"):
            if mark in line:
                steps[f"runner: {mark}"] = time.perf_counter() - start
    runner.wait()
    end = time.perf_counter() - start
    request, answered = api.timings[before]
    steps["runner: request at the server"] = request - start
    steps["runner: answer written"] = answered - start
    steps["runner: process ended"] = end
    api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))
    before = len(api.timings)
    start = time.perf_counter()
    timed(argvs["claude -p"], env, root, True)
    end = time.perf_counter() - start
    request, answered = api.timings[before]
    steps["claude -p: request at the server"] = request - start
    steps["claude -p: answer written"] = answered - start
    steps["claude -p: process ended"] = end
    return steps


WARM_NAME = "warm run (watch)"


def report(
    times: dict[str, list[tuple[float, float]]],
    requests: dict[str, list[int]],
    rounds: int,
    version: str,
) -> None:
    print(f"machine: {machine()}; {rounds} rounds each, alternating; CLI {version}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for name, counts in requests.items():
        print(f"API requests per run, {name}: {sorted(set(counts))}")
    for index, kind in enumerate(("wall", "CPU")):
        medians = {}
        for name, pairs in times.items():
            if kind == "CPU" and name == WARM_NAME:
                continue  # its CPU is the long-lived process's, not a child's
            values = sorted(pair[index] for pair in pairs)
            medians[name] = median(values)
            print(
                f"{kind:4s} {name:26s} median {medians[name] * 1000:7.1f} ms"
                f"  (min {values[0] * 1000:.1f}, max {values[-1] * 1000:.1f})"
            )
        for mine, other in RATIOS:
            if other not in medians or mine not in medians:
                continue  # no CPU figure for the warm run, no "before" unless asked
            ratio = medians[mine] / medians[other]
            per_round = sorted(
                a[index] / b[index] for a, b in zip(times[mine], times[other], strict=True)
            )
            target = "  (target <= 1.1: " + ("met)" if ratio <= 1.1 else "NOT met)")
            if not (mine.startswith("runner run") and other.startswith("claude -p")):
                target = ""
            print(
                f"ratio {mine} / {other}, {kind} medians: {ratio:.2f}"
                f"  (per round {per_round[0]:.2f} .. {per_round[-1]:.2f})" + target
            )


RATIOS = [
    ("runner run", "claude -p"),
    ("runner run (before)", "claude -p"),
    ("runner run (after)", "claude -p"),
    ("runner run (after)", "runner run (before)"),
    ("runner run", "claude -p, runner's flags"),
    ("runner run", "bare SDK script"),
    ("import claude_agent_sdk", "claude -p"),
    (WARM_NAME, "claude -p"),
]


def cli_version(cli_path: Path) -> str:
    done = subprocess.run([str(cli_path), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
