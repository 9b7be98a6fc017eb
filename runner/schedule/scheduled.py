"""Hand-written tasks with a `schedule:`: a calendar without a calendar server.

`schedule: {rrule: "FREQ=WEEKLY;BYDAY=MO", at: "09:00", tz: Europe/Berlin}` in
`tasks/<id>.yaml` makes the task fire like an event of a local calendar: the rule
becomes a VEVENT built in memory and expanded by recurring-ical-events (never our own
RRULE logic), its occurrences get the same stamps, catch-up, claims and task files
as calendar events, and they run under the task's own key (SPEC, "Scheduling
rules"). The event's description is `task: <id>`, so each occurrence takes its
instructions and grants from the hand-written file, as an event pointing at it would.

This module reads only what the schedule needs from a task file (its key, title and
`schedule:`); the full task loader (tasks/files.py) validates the same mapping with
`parse_schedule` so that `runner check` names a bad rule by file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.calendars.parse import ParsedFile
from runner.errors import FileError, Problem, did_you_mean
from runner.keys import is_valid_key
from runner.yamlload import load_mapping

CALENDAR = "schedule"  # the calendar name occurrences of scheduled tasks carry
SCHEDULE_KEYS = ("rrule", "at", "tz", "start")
# The rule's first occurrence is counted from here unless `start:` says otherwise;
# it sets the phase of rules like INTERVAL=2. Fixed, so it is the same on every machine.
DEFAULT_START = date(2026, 1, 1)
_SCHEDULE_LINE = re.compile(rb"^(?:\xef\xbb\xbf)?[\"']?schedule[\"']?[ \t]*:", re.MULTILINE)
_AT = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class Schedule:
    """A validated `schedule:`; plain text fields so it caches as JSON."""

    rrule: str
    at: str  # "HH:MM", local time in `tz`
    tz: str
    start: str | None = None  # ISO date of the first day the rule counts from

    def first(self) -> datetime:
        """DTSTART: the start day at `at` in `tz`."""
        day = date.fromisoformat(self.start) if self.start else DEFAULT_START
        hour, minute = (int(part) for part in self.at.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(self.tz))


class ScheduleError(ValueError):
    """A bad `schedule:`; `key` is the sub-key at fault (for its line), if any."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def parse_schedule(value: Any) -> Schedule:
    """Validate a `schedule:` mapping; raises ScheduleError with a one-line message."""
    if not isinstance(value, dict):
        raise ScheduleError("'schedule' must be a mapping like {rrule: ..., at: ..., tz: ...}")
    for key in value:
        if key not in SCHEDULE_KEYS:
            raise ScheduleError(
                f"unknown key '{key}' in schedule{did_you_mean(str(key), SCHEDULE_KEYS)}"
                f" (known: {', '.join(SCHEDULE_KEYS)})",
                str(key),
            )
    for key in ("rrule", "at", "tz"):
        if key not in value:
            raise ScheduleError(f"schedule needs '{key}'")
    at = _at_text(value["at"])
    tz = value["tz"]
    if not isinstance(tz, str) or not tz:
        raise ScheduleError("schedule.tz must be a zone name like Europe/Berlin", "tz")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"schedule.tz: unknown time zone {tz!r}", "tz") from None
    start = value.get("start")
    if isinstance(start, datetime) or (start is not None and not isinstance(start, date | str)):
        raise ScheduleError("schedule.start must be a date like 2026-01-05", "start")
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise ScheduleError(f"schedule.start: not a date: {start!r}", "start") from None
    schedule = Schedule(
        rrule=_rule_text(value["rrule"]),
        at=at,
        tz=tz,
        start=start.isoformat() if isinstance(start, date) else None,
    )
    _check_rule(schedule)
    return schedule


def _at_text(value: Any) -> str:
    # YAML 1.1 reads an unquoted 9:00 as the base-60 number 540: accept that too.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    match = _AT.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ScheduleError(f'schedule.at must be a time of day like "09:00", not {value!r}', "at")
    return f"{int(match[1]):02d}:{match[2]}"


def _rule_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError('schedule.rrule must be a rule like "FREQ=WEEKLY;BYDAY=MO"', "rrule")
    text = value.strip()
    text = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
    if "\n" in text or "\r" in text:
        raise ScheduleError("schedule.rrule must be one line", "rrule")
    return text


def _check_rule(schedule: Schedule) -> None:
    """What can be said without the calendar libraries (so `list` stays light); the
    rule itself is checked by expanding it (`parse_scheduled`), which `check` runs."""
    parts = dict(part.partition("=")[::2] for part in schedule.rrule.upper().split(";"))
    if "FREQ" not in parts:
        raise ScheduleError("schedule.rrule needs FREQ=..., e.g. FREQ=WEEKLY;BYDAY=MO", "rrule")
    for name in ("INTERVAL", "COUNT"):
        if name in parts and not (parts[name].isdigit() and int(parts[name]) > 0):
            raise ScheduleError(f"schedule.rrule: {name} must be a whole number ≥ 1", "rrule")


# -- a scheduled task as a calendar file ------------------------------------------


def has_schedule_key(data: bytes) -> bool:
    """A quick look, without YAML: is there a line starting `schedule:`? Quoted
    (`"schedule":`), spaced or after a BOM too: a key the loader accepts must not
    leave its task silently never firing."""
    return _SCHEDULE_LINE.search(data) is not None


def scheduled_key(path: Path, values: dict[str, Any]) -> str | None:
    """The task's key, or None when it cannot be one (the task loader says why): a
    scheduled task never fires under a key other than the one its file gives."""
    key = values.get("key", path.stem)
    return key if isinstance(key, str) and is_valid_key(key) else None


def parse_scheduled(path: Path) -> tuple[ParsedFile, str | None]:
    """(the task's schedule as a parsed calendar, its series key), or an empty file.

    A task file that does not load, or whose `schedule:` is malformed, gives no series
    and no problem here: the task loader reports it (`check`, `list`, `tick`). A rule
    that parses but cannot be expanded is this module's problem, at the rule's line.
    """
    empty = ParsedFile([], {}, [])
    try:
        doc = load_mapping(path, path.read_text(encoding="utf-8"), FileError)
        schedule = parse_schedule(doc.values["schedule"]) if "schedule" in doc.values else None
    except (OSError, UnicodeDecodeError, FileError, ScheduleError):
        return empty, None
    if schedule is None:
        return empty, None
    key = scheduled_key(path, doc.values)
    if key is None:
        return empty, None
    title = doc.values.get("title")
    try:
        parsed = _as_calendar(path.stem, title if isinstance(title, str) else path.stem, schedule)
    except Exception as exc:  # the libraries' errors vary; the message is what we keep
        line = doc.child_lines.get("schedule", {}).get("rrule", doc.lines["schedule"])
        message = " ".join(str(exc).split()) or type(exc).__name__
        return ParsedFile([], {}, [Problem(str(path), line, f"schedule.rrule: {message}")]), key
    return parsed, key


def _as_calendar(task_id: str, title: str, schedule: Schedule) -> ParsedFile:
    import icalendar
    import recurring_ical_events

    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//calendar-agent-runner//schedule//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    uid = f"schedule:{task_id}"
    event.add("uid", uid)
    event.add("dtstart", schedule.first())
    event.add("rrule", icalendar.vRecur.from_ical(schedule.rrule))
    event.add("summary", title)
    event.add("description", f"task: {task_id}")
    calendar.add_component(event)
    query = recurring_ical_events.of(calendar)
    # A rule that never fires (UNTIL before the start, a BYSETPOS that selects nothing)
    # or that the library cannot step through is refused here, at the rule's line.
    if next(iter(query.after(schedule.first() - timedelta(seconds=1))), None) is None:
        raise ValueError("the rule never fires")
    return ParsedFile(list(query.series), {uid: event}, [])
