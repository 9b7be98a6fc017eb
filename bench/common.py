"""Helpers shared by the benchmark scripts: timing subprocesses alternately."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}"


def time_command(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def alternate(
    commands: dict[str, Sequence[str]], rounds: int, env: dict[str, str] | None = None
) -> dict[str, list[float]]:
    """Time each command once per round, in turn, so drift hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm-up: page cache, .pyc files
        time_command(argv, env)
    for _ in range(rounds):
        for name, argv in commands.items():
            times[name].append(time_command(argv, env))
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


PY = sys.executable
