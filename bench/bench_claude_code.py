"""`runner run` with the claude-code brain vs a bare `claude -p` of the same prompt.

All three talk to the fake Messages API (tests/fake_anthropic.py) on 127.0.0.1 with
zero latency, with Claude Code's non-essential traffic off and an empty Claude Code
config (HOME) of their own, timed alternately:

- `runner run`: the runner with `brain.provider: claude-code` (Python, the runner, the
  Claude Agent SDK, then the bundled CLI);
- `claude -p`: the same bundled CLI, called directly with the runner's prompt;
- a bare SDK script: Python calling the SDK's `query()` with the runner's options,
  which shows what the runner itself adds on top of the SDK;
- a warm run, as `runner watch` makes one: a long-lived process that has imported the
  runner and the SDK once runs the task (executor, lock, log append) on each request.

Target: runner / `claude -p` ≤ 1.1.
Usage: python bench/bench_claude_code.py [ROUNDS]   (default 10, about a minute)
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, machine, median
from runner.brain.claude_code_setup import QUIET_ENV
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
    settings=json.dumps({"autoMemoryEnabled": False}),
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

ANSWER = [f"Item {n}: something that still needs doing. " for n in range(60)]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv` in `cwd`."""
    cpu, start = cpu_seconds(), time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, env=env, cwd=cwd, check=False, stdin=subprocess.DEVNULL
    )
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if done.returncode != 0 or b"Item 59" not in done.stdout:
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, cpu


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
    bare_file = OUT / "bare_claude_code_sdk.py"
    bare_file.write_text(BARE_SDK, encoding="utf-8")

    with FakeAnthropic() as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "RUNNER_"))}
        env.update({**api.env(), **QUIET_ENV, "HOME": str(config), "CLAUDE_CODE_MAX_RETRIES": "0"})
        commands = {
            "runner run": [PY, "-m", "runner", "--home", str(root), "run", "bench"],
            "claude -p": [str(cli_path), "-p", PROMPT, "--model", "claude-sonnet-5-5"],
            "bare SDK script": [PY, str(bare_file), PROMPT, str(root)],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        warm = subprocess.Popen(
            [PY, "-c", WARM, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            cwd=root,
            text=True,
        )
        assert warm.stdin is not None and warm.stdout is not None
        assert warm.stdout.readline().strip() == "ready"
        times["warm run (watch)"] = []
        for n in range(rounds + 1):  # the first warm run is a warm-up
            (home.logs / "bench.jsonl").unlink(missing_ok=True)  # each run: no history
            for name, argv in commands.items():
                api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))
                if n:
                    times[name].append(timed(argv, env, root))
                else:
                    timed(argv, env, root)
            api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))
            start = time.perf_counter()
            warm.stdin.write("run\n")
            warm.stdin.flush()
            if warm.stdout.readline().strip() != "completed True":
                raise SystemExit("the warm run failed")
            if n:
                times["warm run (watch)"].append((time.perf_counter() - start, 0.0))
        warm.stdin.close()
        warm.wait()

    print(f"machine: {machine()}; {rounds} rounds each, alternating; CLI {cli_version(cli_path)}")
    for index, kind in enumerate(("wall", "CPU")):
        medians = {}
        for name, pairs in times.items():
            if kind == "CPU" and name == "warm run (watch)":
                continue  # its CPU is the long-lived process's, not a child's
            values = [pair[index] for pair in pairs]
            medians[name] = median(values)
            print(
                f"{kind:4s} {name:16s} median {medians[name] * 1000:7.1f} ms"
                f"  (min {min(values) * 1000:.1f})"
            )
        others = ["claude -p", "bare SDK script"]
        if kind == "wall":
            ratio = medians["warm run (watch)"] / medians["claude -p"]
            print(f"ratio warm run/claude -p, wall medians: {ratio:.3f}")
        for other in others:
            ratio = medians["runner run"] / medians[other]
            verdict = "met" if ratio <= 1.1 else "NOT met"
            target = f"  (target ≤ 1.1: {verdict})" if other == "claude -p" else ""
            print(f"ratio runner/{other}, {kind} medians: {ratio:.3f}{target}")


def cli_version(cli_path: Path) -> str:
    done = subprocess.run([str(cli_path), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
