"""`runner next --days 7` vs `khal list today 7d` over 300 recurring series.

Both read the same vdir folder (one .ics per series: varied RRULEs, zones, floating
and all-day events, EXDATEs and moved occurrences). khal is installed from PyPI into
its own venv under bench/out/ if missing. Each side is timed warm (its cache built:
khal's sqlite, runner's .runner/cache/) and cold (cache deleted before every run);
medians of several alternating runs.

Targets (issue 4): runner warm at most half of khal warm, and far below khal cold.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, machine, median

SERIES = 300
ROUNDS = 7
COLD_KHAL_ROUNDS = 2  # ~35 s each on 2 cores: keeps the bench near two minutes
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
RULES = [
    "FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
    "FREQ=HOURLY;INTERVAL=6",
    "FREQ=MONTHLY;BYMONTHDAY=1,15",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=1",
    "FREQ=DAILY;UNTIL=20271231T000000Z",
]
HOME = OUT / "next-home"
KHAL_VENV = OUT / "khal-venv"


def event_text(i: int, rng: random.Random) -> str:
    uid = f"bench-{i:04d}@example.com"
    rule = RULES[i % len(RULES)]
    kind = i % 7
    start_day = f"2026{rng.randint(1, 10):02d}{rng.randint(1, 28):02d}"
    hour = rng.randint(6, 20)
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z"]
    if kind == 5:  # all-day
        lines += [f"DTSTART;VALUE=DATE:{start_day}"]
        rule = rule.replace("FREQ=HOURLY;INTERVAL=6", "FREQ=DAILY").replace(
            "UNTIL=20271231T000000Z", "UNTIL=20271231"
        )
    elif kind == 6:  # floating
        lines += [f"DTSTART:{start_day}T{hour:02d}0000", "DURATION:PT30M"]
        rule = rule.replace("UNTIL=20271231T000000Z", "UNTIL=20271231T000000")
    else:
        zone = ZONES[i % len(ZONES)]
        if zone == "UTC":
            lines += [f"DTSTART:{start_day}T{hour:02d}0000Z", "DURATION:PT45M"]
        else:
            lines += [f"DTSTART;TZID={zone}:{start_day}T{hour:02d}0000", "DURATION:PT1H"]
    lines += [
        f"SUMMARY:Series {i}",
        f"DESCRIPTION:Agent task number {i}.\\nCheck the notes and report.",
        f"RRULE:{rule}",
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


def build_home() -> Path:
    if HOME.exists():
        shutil.rmtree(HOME)
    folder = HOME / "calendars" / "agent"
    folder.mkdir(parents=True)
    rng = random.Random(4)
    for i in range(SERIES):
        text = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
            + event_text(i, rng)
            + "\r\nEND:VCALENDAR\r\n"
        )
        (folder / f"bench-{i:04d}.ics").write_text(text, encoding="utf-8")
    khal_conf = HOME / "khal.conf"
    khal_conf.write_text(
        f"""[calendars]
[[agent]]
path = {folder}
type = calendar

[locale]
local_timezone = UTC
default_timezone = UTC
timeformat = %H:%M
dateformat = %Y-%m-%d
longdateformat = %Y-%m-%d
datetimeformat = %Y-%m-%d %H:%M
longdatetimeformat = %Y-%m-%d %H:%M

[sqlite]
path = {HOME / "khal.db"}
""",
        encoding="utf-8",
    )
    return folder


def ensure_khal() -> Path:
    khal = KHAL_VENV / "bin" / "khal"
    if not khal.exists():
        print("installing khal from PyPI into bench/out/khal-venv ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(KHAL_VENV)], check=True)
        subprocess.run(
            [str(KHAL_VENV / "bin" / "pip"), "install", "-q", "khal"],
            check=True,
        )
    return khal


def timed(
    argv: Sequence[str], before: Sequence[Path] = (), env: dict[str, str] | None = None
) -> float:
    for path in before:  # a cold run: its cache removed first
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    build_home()
    khal = ensure_khal()
    env = dict(os.environ, TZ="UTC")
    env.pop("RUNNER_HOME", None)
    runner_argv = [PY, "-m", "runner", "--home", str(HOME), "next", "--days", "7"]
    khal_argv = [str(khal), "-c", str(HOME / "khal.conf"), "list", "today", "7d"]
    runner_cache = HOME / ".runner" / "cache"
    khal_db = HOME / "khal.db"
    cases: dict[str, tuple[Sequence[str], Sequence[Path], int]] = {
        "runner next (warm)": (runner_argv, (), ROUNDS),
        "runner next (cold)": (runner_argv, (runner_cache,), ROUNDS),
        "khal list (warm)": (khal_argv, (), ROUNDS),
        "khal list (cold)": (khal_argv, (khal_db,), COLD_KHAL_ROUNDS),
    }
    # How many occurrences the window holds (one table row each).
    lines = subprocess.run(runner_argv, check=True, capture_output=True, text=True, env=env)
    count = len(lines.stdout.splitlines()) - 1
    times: dict[str, list[float]] = {name: [] for name in cases}
    # Warm-up, which also builds the warm caches. khal's first run is a cold run by
    # definition (no database yet), so it is kept as one cold sample.
    for name in sorted(cases, key=lambda n: "(cold)" not in n):
        argv, cold, _ = cases[name]
        elapsed = timed(argv, cold, env)
        if name == "khal list (cold)":
            times[name].append(elapsed)
    for _ in range(ROUNDS):  # alternating, so drift hits every case alike
        for name, (argv, cold, rounds) in cases.items():
            if len(times[name]) < rounds:
                times[name].append(timed(argv, cold, env))
    medians = {name: median(values) for name, values in times.items()}
    print(f"runner next --days 7 vs khal list today 7d: {SERIES} series, {count} occurrences")
    print(f"machine: {machine()}; medians of {ROUNDS} runs ({COLD_KHAL_ROUNDS} for cold khal)")
    print(f"{'command':<22}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, values in times.items():
        print(f"{name:<22}{medians[name]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}")
    warm_ratio = medians["runner next (warm)"] / medians["khal list (warm)"]
    cold_ratio = medians["runner next (warm)"] / medians["khal list (cold)"]
    print(f"runner warm / khal warm = {warm_ratio:.2f} (target <= 0.50)")
    print(f"runner warm / khal cold = {cold_ratio:.2f}")
    cold_cold = medians["runner next (cold)"] / medians["khal list (cold)"]
    print(f"runner cold / khal cold = {cold_cold:.2f}")


if __name__ == "__main__":
    main()
