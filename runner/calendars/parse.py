"""Reading calendars from their vdir folders: `calendars/<name>/*.ics`.

Which folders: every calendar in `runner.yaml` (CalDAV or not, its folder is
`calendars/<name>/`), or, with no `calendars` setting, every folder under calendars/
(so a vdir kept by vdirsyncer works as is). Each `.ics` is parsed with icalendar; a
malformed file, a bad RRULE or an unknown TZID becomes a `Problem` (path and line)
and only that file or series is skipped: one bad file never stops the rest.

`CalendarCache` keeps parsed files keyed by (path, mtime_ns, size). The watch loop
keeps one and calls `refresh()` often: that is a listing and a stat per file, and
only changed files are parsed again. Parsing is lazy: a file is parsed only when an
expansion needs it and no cached expansion (schedule.py) covers the window, so a
warm `runner next` never imports icalendar at all. With `disk=True` the cache is
also kept under .runner/cache/ for the next process; it is disposable: a missing,
stale or corrupt cache file is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import Problem

_TIME_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass
class ParsedFile:
    """One parsed .ics: the recurring_ical_events series that are usable, the master
    component of each UID (an override without its own SUMMARY falls back to it),
    and the problems found."""

    series: list[Any]
    masters: dict[str, Any]
    problems: list[Problem]
    # RANGE=THISANDFUTURE overrides move every later instance by DTSTART − RECURRENCE-ID;
    # keyed by (UID, RECURRENCE-ID as text) so an instance's original start can be
    # found again (its identity must not change when it is moved).
    moves: dict[tuple[str, str], Any] = field(default_factory=dict)


# -- parsing one file -------------------------------------------------------------


class EventLines:
    """Line numbers for problems: icalendar does not keep them, so find them."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self._blocks: list[tuple[int, int, str]] | None = None

    def first(self, predicate: Any, start: int = 0, end: int | None = None) -> int | None:
        for index in range(start, len(self.lines) if end is None else end):
            if predicate(self.lines[index]):
                return index + 1
        return None

    def blocks(self) -> list[tuple[int, int, str]]:
        """(first line index, end index, UID) of each VEVENT."""
        if self._blocks is None:
            self._blocks = []
            begin: int | None = None
            uid = ""
            for index, line in enumerate(self.lines):
                upper = line.upper()
                if upper.startswith("BEGIN:VEVENT"):
                    begin, uid = index, ""
                elif upper.startswith("UID") and begin is not None:
                    uid = line.split(":", 1)[-1]
                elif upper.startswith("END:VEVENT") and begin is not None:
                    self._blocks.append((begin, index + 1, uid))
                    begin = None
        return self._blocks

    def of_event(self, uid: str, prop: str | None = None) -> int | None:
        for begin, end, block_uid in self.blocks():
            if block_uid != uid:
                continue
            if prop is None:
                return begin + 1
            found = self.first(lambda ln: ln.upper().startswith(prop), begin, end)
            if found is not None:
                return found
        return None

    def quoted_in(self, message: str) -> int | None:
        for fragment in _QUOTED.findall(message):
            if fragment.strip():
                found = self.first(lambda ln, f=fragment: ln.startswith(f))
                if found is not None:
                    return found
        return None


def parse_file(path: Path) -> ParsedFile:
    """Parse one .ics; never raises for bad content (it becomes problems)."""
    import icalendar
    import recurring_ical_events

    where = str(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")  # a byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        return ParsedFile([], {}, [Problem(where, None, f"not UTF-8 text: {exc.reason}")])
    except OSError as exc:
        return ParsedFile([], {}, [Problem(where, None, f"cannot read: {exc.strerror}")])
    lines = EventLines(text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # untrusted input: any parser failure is a problem, not a crash
        message = str(exc).split(": b'", 1)[0]
        return ParsedFile(
            [], {}, [Problem(where, lines.quoted_in(message), f"not iCalendar: {message}")]
        )

    problems: list[Problem] = []
    bad_uids: set[str] = set()
    masters: dict[str, Any] = {}
    moves: dict[tuple[str, str], Any] = {}
    for event in calendar.walk("VEVENT"):
        uid = event.get("UID")
        if uid is None:
            line = lines.first(lambda ln: ln.upper().startswith("BEGIN:VEVENT"))
            problems.append(Problem(where, line, "event without UID skipped"))
            continue
        uid = str(uid)
        try:
            reason = _event_problem(event)
        except Exception as exc:  # untrusted input: report the event, keep the rest
            reason = ("UID", f"unreadable event ({exc}); skipped")
        if reason is not None:
            prop, message = reason
            problems.append(Problem(where, lines.of_event(uid, prop), message))
            bad_uids.add(uid)
            continue
        if "RECURRENCE-ID" not in event:
            masters[uid] = event
        else:
            _note_move(event, uid, moves)

    uids = {str(e.get("UID")) for e in calendar.walk("VEVENT") if e.get("UID") is not None}
    good = uids - bad_uids  # (the library gives a UID-less event a random one: not ours)
    try:
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
        series = [s for s in query.series if str(s.uid) in good]
    except Exception:  # an error the library does not skip: build series one by one
        series = []
        for uid in sorted(good):
            with contextlib.suppress(Exception):
                series.extend(recurring_ical_events.of(_only(calendar, uid)).series)
    kept = {str(s.uid) for s in series}
    for uid in sorted(uids - kept - bad_uids):
        problems.append(Problem(where, lines.of_event(uid, "RRULE"), _series_error(calendar, uid)))
    return ParsedFile(series, masters, problems, moves)


def _note_move(event: Any, uid: str, moves: dict[tuple[str, str], Any]) -> None:
    rid = event["RECURRENCE-ID"]
    if str(rid.params.get("RANGE", "")).upper() != "THISANDFUTURE":
        return
    with contextlib.suppress(TypeError, AttributeError, KeyError):
        moves[(uid, rid.to_ical().decode())] = event["DTSTART"].dt - rid.dt


def _only(calendar: Any, uid: str) -> Any:
    """A copy of `calendar` holding only the events of `uid`."""
    import icalendar

    mini = icalendar.Calendar()
    for name, value in calendar.items():
        mini[name] = value
    for event in calendar.walk("VEVENT"):
        if str(event.get("UID")) == uid:
            mini.add_component(event)
    return mini


def _event_problem(event: Any) -> tuple[str, str] | None:
    """(property, message) for an event that cannot be scheduled, else None."""
    if "DTSTART" not in event:
        return "UID", "event without DTSTART skipped"
    for name, message in getattr(event, "errors", []) or []:
        if str(name).upper() in (*_TIME_PROPS, "RRULE"):
            return str(name).upper(), f"bad {name}: {message}"
    for name in _TIME_PROPS:
        values = event.get(name)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            tzid = getattr(value, "params", {}).get("TZID")
            if tzid and _is_naive(value):
                return name, f"unknown TZID '{tzid}' in {name}; event skipped"
    return None


def _is_naive(value: Any) -> bool:
    dts = getattr(value, "dts", None)
    items = [d.dt for d in dts] if dts is not None else [getattr(value, "dt", None)]
    for item in items:
        if isinstance(item, tuple):
            item = item[0]
        if getattr(item, "hour", None) is not None and getattr(item, "tzinfo", 1) is None:
            return True
    return False


def _series_error(calendar: Any, uid: str) -> str:
    """The message recurring_ical_events gives for one series it had to skip."""
    import recurring_ical_events

    try:
        recurring_ical_events.of(_only(calendar, uid))
    except Exception as exc:  # the library's errors vary; the message is all we keep
        return f"bad recurrence rule: {exc}; event skipped"
    return "event cannot be expanded; skipped"


# -- runner check -------------------------------------------------------------------
