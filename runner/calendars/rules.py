"""What makes one VEVENT unschedulable, found before expansion so `check` sees it.

Each check returns (property, message) for the first problem of an event, else None;
the caller turns the property into a line of that event's own block. Messages are
one line and echo calendar text only through `clean()`.

Recurrence rules are expanded by recurring-ical-events through dateutil, which steps
through every instance from DTSTART: a rule whose steps never advance
(INTERVAL=0) never ends, and one that starts far in the past (FREQ=MINUTELY from
year 1) takes hours. `steps_until` bounds that cost before a single step is taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from runner.calendars.lines import clean

TIME_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE")
SCHEDULING = ("RRULE", "UID", "STATUS", "DURATION", "SEQUENCE")
_UNPARSED = re.compile(r"Content line could not be parsed into parts: '([A-Za-z0-9-]+)[;:]")
# Properties RFC 5545 allows once per event; given twice, which one is meant is a guess.
ONCE = (
    "UID",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "SEQUENCE",
    "SUMMARY",
    "DESCRIPTION",
    "STATUS",
)
# Seconds one step of each FREQ advances (a month at its shortest: the most steps).
STEP = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
# RFC 5545 3.3.10: the allowed values of each BYxxx part (negative ones where allowed).
RANGES = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
# Years the runner schedules in: beyond them, zone arithmetic overflows Python's dates.
FIRST_YEAR, LAST_YEAR = 2, 9998


def event_problem(event: Any) -> tuple[str, str] | None:
    """(property, message) for an event that cannot be scheduled, else None."""
    for name in ONCE:
        if isinstance(event.get(name), list):
            return name, f"{name} given {len(event.get(name))} times (once allowed); event skipped"
    if "DTSTART" not in event:
        return "BEGIN", "event without DTSTART skipped"
    for name, message in getattr(event, "errors", []) or []:
        if name is None:  # a line icalendar could not split: dropped, so a guess follows
            unparsed = _UNPARSED.match(str(message))
            prop = unparsed.group(1).upper() if unparsed else ""
            if prop in (*TIME_PROPS, *SCHEDULING):
                return prop, f"{prop} line cannot be parsed; event skipped"
        elif str(name).upper() in (*TIME_PROPS, *SCHEDULING):
            return str(name).upper(), f"bad {name}: {clean(str(message))}; event skipped"
    return _time_problem(event) or _rule_problem(event)


def _time_problem(event: Any) -> tuple[str, str] | None:
    for name in TIME_PROPS:
        values = event.get(name)
        for value in values if isinstance(values, list) else [] if values is None else [values]:
            items = _values_of(value)
            tzid = getattr(value, "params", {}).get("TZID")
            if tzid and any(_naive(item) for item in items):
                return name, f"unknown TZID '{clean(str(tzid), 60)}' in {name}; event skipped"
            for item in items:
                if isinstance(item, time) or not isinstance(item, date):
                    return name, f"{name} is not a date or date-time; event skipped"
                if not FIRST_YEAR <= item.year <= LAST_YEAR:
                    return name, f"{name} in year {item.year} cannot be scheduled; event skipped"
    return None


def _values_of(value: Any) -> list[Any]:
    """Every date, datetime, time or period start one time property holds."""
    dts = getattr(value, "dts", None)
    items = [d.dt for d in dts] if dts is not None else [getattr(value, "dt", None)]
    return [i[0] if isinstance(i, tuple) else i for i in items]


def _naive(item: Any) -> bool:
    return isinstance(item, datetime) and item.tzinfo is None


def _rules(event: Any) -> list[Any]:
    rules = event.get("RRULE")
    return rules if isinstance(rules, list) else [] if rules is None else [rules]


def _rule_problem(event: Any) -> tuple[str, str] | None:
    start = event["DTSTART"].dt
    for rule in _rules(event):
        message = _one_rule_problem(rule, start)
        if message is not None:
            return "RRULE", f"RRULE {message}; event skipped"
    return None


def _one_rule_problem(rule: Any, start: Any) -> str | None:
    freq = [str(f).upper() for f in rule.get("FREQ", [])]
    if len(freq) != 1 or freq[0] not in STEP:
        return "needs one FREQ of " + ", ".join(STEP)
    for part, low in (("INTERVAL", 1), ("COUNT", 1)):
        for value in rule.get(part, []):
            if not isinstance(value, int) or value < low:
                return f"{part}={clean(str(value), 20)}: must be 1 or more"
    if rule.get("COUNT") and rule.get("UNTIL"):
        return "has both COUNT and UNTIL (RFC 5545 allows one)"
    for part, (low, high, negative) in RANGES.items():
        for value in rule.get(part, []):
            number = _int(value)
            if number is None or not (
                low <= number <= high or (negative and -high <= number <= -1)
            ):
                return f"{part}={clean(str(value), 20)}: out of range"
    for until in rule.get("UNTIL", []):
        if isinstance(until, date) and _before(until, start):
            return "UNTIL is before DTSTART: the rule has no occurrence"
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _naive_utc(value: date) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _before(until: date, start: Any) -> bool:
    """Whether UNTIL lies before DTSTART (a day's slack where one is floating or a date)."""
    if not isinstance(start, date):
        return False
    same_kind = type(until) is type(start) and _naive(until) == _naive(start)
    slack = timedelta(0) if same_kind else timedelta(days=1)
    return _naive_utc(until) < _naive_utc(start) - slack


# -- the cost of expanding, before expanding -------------------------------------------


@dataclass(frozen=True)
class RuleCost:
    """What dateutil steps through for one rule: from `start` every `step`, up to
    `count` steps or until `until` (UTC POSIX seconds)."""

    start: float
    step: float
    count: int | None
    until: float | None

    def steps_until(self, end: float) -> float:
        stop = end if self.until is None else min(end, self.until)
        steps = max(0.0, (stop - self.start) / self.step)
        return steps if self.count is None else min(steps, float(self.count))


def rule_costs(event: Any, zone: Any = UTC) -> list[RuleCost]:
    """The cost of each RRULE of an event (that passed `event_problem`)."""
    start = _posix(event["DTSTART"].dt, zone)
    costs: list[RuleCost] = []
    for rule in _rules(event):
        freq = str(rule["FREQ"][0]).upper()
        interval = int(rule.get("INTERVAL", [1])[0])
        count = rule.get("COUNT")
        untils = rule.get("UNTIL")
        costs.append(
            RuleCost(
                start,
                STEP[freq] * interval,
                int(count[0]) if count else None,
                _posix(untils[0], zone) if untils else None,
            )
        )
    return costs


def _posix(value: date, zone: Any) -> float:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.timestamp()
