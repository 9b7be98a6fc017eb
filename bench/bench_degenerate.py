"""`runner check`, `next` and `tick` on a home whose calendar is full of degenerate rules.

One .ics holds a good daily event beside every rule that used to hang or crawl
(INTERVAL=0, FREQ=SECONDLY from last week, a minutely rule from 2020, FREQ=MINUTELY from
year 2, COUNT=0, BYSETPOS=400, UNTIL before DTSTART, years 1 and 9999); the exporter
files of tests/ics/ sit beside it. Each command runs with no parse cache (deleted
before every run), so each pays the whole parse and expansion. Before the step bound,
`next` on INTERVAL=0 never finished. Target: each command well under a second beyond
Python start-up (`runner --help` is timed for comparison).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, REPO, machine, median

HOME = OUT / "degenerate-home"
ROUNDS = 5
RULES = [
    ("FREQ=MINUTELY;INTERVAL=0", None),
    ("FREQ=SECONDLY", timedelta(days=7)),
    ("FREQ=MINUTELY", "20200101T000000Z"),
    ("FREQ=MINUTELY", "00020101T000000Z"),
    ("FREQ=DAILY;COUNT=0", None),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=400", None),
    ("FREQ=DAILY;UNTIL=20200101T000000Z", None),
    ("FREQ=YEARLY", "00010101T000000Z"),
    ("FREQ=DAILY", "99991231T230000Z"),
]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def build() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    folder = HOME / "calendars" / "agent"
    folder.mkdir(parents=True)
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        f"BEGIN:VEVENT\nUID:good\nDTSTART:{stamp(now - timedelta(days=2))}\n"
        "RRULE:FREQ=DAILY\nSUMMARY:Good\nEND:VEVENT"
    ]
    for index, (rule, start) in enumerate(RULES):
        if isinstance(start, timedelta):
            start = stamp(now - start)
        start = start or stamp(now - timedelta(hours=1))
        events.append(
            f"BEGIN:VEVENT\nUID:bad-{index}\nDTSTART:{start}\nRRULE:{rule}\n"
            f"SUMMARY:Bad {index}\nEND:VEVENT"
        )
    body = "\n".join(events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bench//EN\n{body}\nEND:VCALENDAR\n"
    (folder / "degenerate.ics").write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    for fixture in (REPO / "tests" / "ics").glob("*.ics"):
        shutil.copy(fixture, folder / fixture.name)


def timed(args: list[str]) -> tuple[float, int]:
    shutil.rmtree(HOME / ".runner", ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [PY, "-m", "runner", "--home", str(HOME), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return time.perf_counter() - start, done.returncode


def main() -> None:
    build()
    commands = {"--help": ["--help"], "check": ["check"], "next": ["next"], "tick": ["tick"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, int] = {}
    for _ in range(ROUNDS):
        for name, args in commands.items():
            seconds, codes[name] = timed(args)
            times[name].append(seconds)
    print(f"degenerate rules: {len(RULES)} bad series + 1 good + tests/ics/ ({machine()})")
    for name, values in times.items():
        print(
            f"  runner {name:<7} median {median(values):.3f} s  max {max(values):.3f} s"
            f"  (exit {codes[name]})"
        )


if __name__ == "__main__":
    main()
