"""`runner run` vs a bare Python script making the same streaming SDK call.

Both talk to the fake Messages API (tests/fake_anthropic.py) on 127.0.0.1 with zero
latency, so what is measured is process start, imports and the runner's own work
(settings, task file, lock, state writes with fsync, the log append) beside the
SDK's. Timed alternately in one run; medians and the ratio, of wall time and of the
child's CPU time (user + sys), which a busy machine disturbs less.

Target: ratio ≤ 1.1 (the runner's own work vanishes beside the SDK's).
Usage: python bench/bench_run_vs_sdk.py [ROUNDS]   (default 20, about 80 s)
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
from runner.home import Home
from runner.init import init_home
from tests.fake_anthropic import FakeAnthropic, Reply

TASK = """\
title: Bench
instructions: |
  Summarise the three most important open items from my notes.
"""

SETTINGS = """\
brain:
  provider: anthropic
  max_retries: 0
compression:
  max_executions: 100000
"""

# The bare script: the same streaming call, text to stdout as it arrives.
BARE = """\
import json, sys
import anthropic
params = json.load(open(sys.argv[1]))
client = anthropic.Anthropic(timeout=120.0, max_retries=0)
with client.messages.stream(**params) as stream:
    for text in stream.text_stream:
        sys.stdout.write(text)
        sys.stdout.flush()
    message = stream.get_final_message()
sys.stdout.write("\\n")
"""

# The same script ending as `runner` ends: with gc.freeze(), which spares the
# interpreter's final collections over the SDK's objects (~0.3 s). Against this one
# the ratio shows the runner's own work alone.
BARE_FROZEN = BARE + "import gc\ngc.freeze()\n"

ANSWER = [f"Item {n}: something that still needs doing. " for n in range(60)]


def reset(home: Home) -> None:
    """Each runner run starts from the same files: a first run, no history."""
    (home.tasks / "bench.yaml").write_text(TASK, encoding="utf-8")
    (home.logs / "bench.jsonl").unlink(missing_ok=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv`."""
    cpu, start = cpu_seconds(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if done.returncode != 0 or b"Item 59" not in done.stdout:
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed, cpu


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = OUT / "run-home"
    if root.exists():
        shutil.rmtree(root)
    home = Home(root)
    init_home(home)
    home.settings_file.write_text(SETTINGS, encoding="utf-8")
    reset(home)
    params_file = OUT / "run-params.json"
    bare_file = OUT / "bare_sdk_call.py"
    bare_file.write_text(BARE, encoding="utf-8")
    frozen_file = OUT / "bare_sdk_call_frozen.py"
    frozen_file.write_text(BARE_FROZEN, encoding="utf-8")

    with FakeAnthropic() as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "RUNNER_"))}
        env.update(api.env())
        runner_argv = [PY, "-m", "runner", "--home", str(root), "run", "bench"]
        bare_argv = [PY, str(bare_file), str(params_file)]
        frozen_argv = [PY, str(frozen_file), str(params_file)]

        def reply() -> None:
            api.queue(Reply(chunks=ANSWER, text="".join(ANSWER)))

        # Warm-up, and capture the runner's exact request for the bare script to send.
        reply()
        timed(runner_argv, env)
        body = api.message_requests[-1].body
        params = {k: body[k] for k in ("model", "max_tokens", "system", "messages") if k in body}
        params_file.write_text(json.dumps(params), encoding="utf-8")
        reply()
        timed(bare_argv, env)
        if api.message_requests[-1].body != api.message_requests[-2].body:
            raise SystemExit("the bare script did not send the runner's request")

        times: dict[str, list[tuple[float, float]]] = {
            "runner run": [],
            "bare SDK script": [],
            "bare + gc.freeze": [],
        }
        for _ in range(rounds):
            reset(home)
            reply()
            times["runner run"].append(timed(runner_argv, env))
            reply()
            times["bare SDK script"].append(timed(bare_argv, env))
            reply()
            times["bare + gc.freeze"].append(timed(frozen_argv, env))

    print(f"machine: {machine()}; {rounds} rounds each, alternating")
    ratios: dict[tuple[str, str], float] = {}
    for index, kind in enumerate(("wall", "CPU")):
        medians = {}
        for name, pairs in times.items():
            values = [pair[index] for pair in pairs]
            medians[name] = median(values)
            print(
                f"{kind:4s} {name:16s} median {medians[name] * 1000:7.1f} ms"
                f"  (min {min(values) * 1000:.1f})"
            )
        for other in ("bare SDK script", "bare + gc.freeze"):
            ratios[(kind, other)] = medians["runner run"] / medians[other]
    for (kind, other), ratio in ratios.items():
        verdict = "met" if ratio <= 1.1 else "NOT met"
        print(f"ratio runner/{other}, {kind} medians: {ratio:.3f}  (target ≤ 1.1: {verdict})")


if __name__ == "__main__":
    main()
