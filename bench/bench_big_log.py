"""`runner run` and `runner compress` on a 200 MB live log (nothing compressed yet):
time and peak RSS.

Generates a home whose task `hello` has a live log of about 200 MB (20,000
executions of ~10 KB), then times `runner run hello` and `runner compress hello`
(offline brain) as real subprocesses and reads their peak RSS from wait4(). Each
round starts from a fresh copy of the log, so every command meets the same 200 MB
file. Prints the figures.

    .venv/bin/python bench/bench_big_log.py [--mb 200] [--rounds 3] [--only run|compress]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median
from runner.home import Home
from runner.init import init_home
from runner.keys import session_id
from runner.logs.records import ExecutionRecord
from runner.logs.store import record_line


def make_log(path: Path, megabytes: int) -> int:
    answer = "A line of a long answer about the week's open items. " * 180  # ~10 KB
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        while out.tell() < megabytes * 1_000_000:
            record = ExecutionRecord.from_json(
                {
                    "type": "execution",
                    "id": f"{count:032x}",
                    "task": "hello",
                    "session_id": session_id("hello"),
                    "started": f"2026-01-01T00:00:{count % 60:02d}.000000Z",
                    "finished": f"2026-01-01T00:00:{count % 60:02d}.500000Z",
                    "status": "completed",
                    "model": "offline",
                    "instructions": "Say hello.",
                    "response": answer,
                    "usage": {"input_tokens": 10, "output_tokens": 10},
                }
            )
            out.write(record_line(record) + "\n")
            count += 1
    return count


def run_once(home: Home, command: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `runner <command> hello`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--home", str(home.root), command, "hello"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"runner {command} failed")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("run", "compress"))
    args = parser.parse_args()
    commands = [args.only] if args.only else ["run", "compress"]
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        init_home(home)
        master = Path(tmp) / "master.jsonl"
        count = make_log(master, args.mb)
        size = master.stat().st_size / 1e6
        print(f"machine: {machine()}")
        print(f"live log: {size:.0f} MB, {count} executions, no summary header")
        for command in commands:
            times: list[float] = []
            peaks: list[float] = []
            for _ in range(args.rounds):
                shutil.copyfile(master, home.logs / "hello.jsonl")
                seconds, peak = run_once(home, command)
                times.append(seconds)
                peaks.append(peak)
            print(
                f"runner {command} hello: median {median(times):.2f} s, "
                f"peak RSS {max(peaks):.0f} MB"
            )
            print(f"  times: {', '.join(f'{t:.2f}' for t in times)} s")
        live = (home.logs / "hello.jsonl").stat().st_size / 1e6
        print(f"live log after the last command: {live:.1f} MB")


if __name__ == "__main__":
    main()
