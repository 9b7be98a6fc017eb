"""The home's daily token budget (`brain.daily_tokens`, SPEC "Agent tools").

The day's spend is read from the logs, the truth: every execution record (live log
and archive, each id once) that finished on today's local date, summed over its
input, cache and output tokens. Only log files written today are opened, so a home
of thousands of quiet series pays one stat() per file. Once the sum passes the cap,
further runs that day fail before any brain call, not retryably, with error `budget`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from runner.brain.protocol import Usage
from runner.clock import Clock, local_zone, parse_utc_iso
from runner.errors import BrainError
from runner.home import Home
from runner.settings import Settings

BUDGET = "budget"


@dataclass(frozen=True)
class DaySpend:
    day: date
    tokens: int
    cap: int | None

    @property
    def exceeded(self) -> bool:
        return self.cap is not None and self.tokens >= self.cap

    def to_json(self) -> dict[str, object]:
        return {"date": self.day.isoformat(), "tokens": self.tokens, "cap": self.cap}


def spent_on(home: Home, day: date) -> int:
    zone = local_zone()
    seen: set[str] = set()
    total = 0
    for path in _logs_touched_on(home, day):
        try:
            # "\n" only: an answer may hold U+2028 unescaped (not a line end in JSONL).
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            continue
        for line in lines:
            if '"execution"' not in line:
                continue
            try:
                record = json.loads(line)
                finished = parse_utc_iso(str(record.get("finished")))
            except (json.JSONDecodeError, ValueError, AttributeError):
                continue  # a torn or odd line: the log's own readers report it
            rid = str(record.get("id"))
            if record.get("type") != "execution" or rid in seen:
                continue
            if finished.astimezone(zone).date() != day:
                continue
            seen.add(rid)
            usage = record.get("usage")
            total += Usage.from_dict(usage if isinstance(usage, dict) else None).total
    return total


def _logs_touched_on(home: Home, day: date) -> list[Path]:
    zone = local_zone()
    found: list[Path] = []
    for folder in (home.logs, home.archive):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.jsonl")):
            try:
                mtime = datetime.fromtimestamp(path.stat().st_mtime, zone)
            except OSError:
                continue
            if mtime.date() >= day:
                found.append(path)
    return found


def day_spend(home: Home, settings: Settings, clock: Clock) -> DaySpend:
    day = clock.now().astimezone(local_zone()).date()
    return DaySpend(day, spent_on(home, day), settings.brain.daily_tokens)


def check_budget(home: Home, settings: Settings, clock: Clock) -> None:
    """Raise the non-retryable `budget` failure once today's spend passed the cap."""
    if settings.brain.daily_tokens is None:
        return
    if day_spend(home, settings, clock).exceeded:
        raise BrainError(BUDGET, retryable=False)
