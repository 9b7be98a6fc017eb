"""Reading calendars from their vdir folders: `calendars/<name>/*.ics`.

Which folders: every calendar in `runner.yaml` (CalDAV or not, its folder is
`calendars/<name>/`), or, with no `calendars` setting, every folder under calendars/
(so a vdir kept by vdirsyncer works as is). Each `.ics` is parsed with icalendar; a
malformed file, a bad RRULE or an unknown TZID becomes a `Problem` (path and line)
and only that file or series is skipped: one bad file never stops the rest.

Parsing is lazy (schedule/cache.py decides when a file needs it), so icalendar is
imported inside the functions here, and only then.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.calendars.lines import Block, EventLines, clean, why_failed
from runner.calendars.lines import where as file_where
from runner.calendars.rules import RuleCost, event_problem, rule_costs
from runner.errors import Problem


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
    # Per UID: the line a problem found while expanding is reported at (the master's
    # RRULE, else its BEGIN:VEVENT), the line of each master property, and what its
    # rules cost to expand (rules.RuleCost).
    lines: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, Block] = field(default_factory=dict)
    costs: dict[str, list[RuleCost]] = field(default_factory=dict)


@dataclass
class _Event:
    """One VEVENT as found: the component as written, the one to expand (X-WR-TIMEZONE
    applied) and its lines."""

    original: Any
    converted: Any
    block: Block | None
    method: str = ""  # the VCALENDAR's METHOD (iTIP), upper-case; "" without one


# iTIP methods (RFC 5546) whose VEVENT speaks about an event without restating its time.
_ABOUT_AN_EVENT = ("REPLY", "CANCEL", "REFRESH", "DECLINECOUNTER")


# -- parsing one file -------------------------------------------------------------


def parse_file(path: Path) -> ParsedFile:
    """Parse one .ics (one or several VCALENDARs); bad content becomes problems."""
    where = file_where(path)
    out = ParsedFile([], {}, [])
    text = _read(path, where, out.problems)
    if text is None:
        return out
    lines = EventLines(text)
    with library_warnings(where, out.problems):
        events = _events(where, text, lines, out.problems)
        good = _checked(where, events, out.problems)
        _build(where, good, out)
    return out


def _read(path: Path, where: str, problems: list[Problem]) -> str | None:
    try:
        return path.read_bytes().decode("utf-8-sig")  # a byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        problems.append(Problem(where, None, f"not UTF-8 text: {exc.reason}"))
    except OSError as exc:
        problems.append(Problem(where, None, f"cannot read: {exc.strerror}"))
    return None


def _events(where: str, text: str, lines: EventLines, problems: list[Problem]) -> list[_Event]:
    """Every VEVENT of every VCALENDAR in the file, with its lines."""
    import icalendar

    structure = lines.structure_error or _zone_twice(lines)
    if structure is not None:
        problems.append(Problem(where, structure[0], f"not iCalendar: {structure[1]}"))
        return []
    try:
        components = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:  # the parser's own words for bad content
        message = (str(exc).split(": b'", 1)[0].splitlines() or ["unreadable"])[0]
        line = lines.quoted_in(message)
        problems.append(Problem(where, line, f"not iCalendar: {clean(message)}"))
        return []
    except Exception as exc:  # untrusted input: any parser failure is a problem, not a crash
        message = f"not iCalendar: icalendar cannot read it ({type(exc).__name__})"
        problems.append(Problem(where, None, message))
        return []
    if not components:
        problems.append(Problem(where, None, "not iCalendar: no BEGIN:VCALENDAR in the file"))
    tops: list[Block | None] = list(lines.top)
    if len(tops) != len(components):
        tops = [None] * len(components)
    events: list[_Event] = []
    for block, component in zip(tops, components, strict=True):
        if component.name != "VCALENDAR":
            outside = f"BEGIN:{clean(component.name, 40)} outside a VCALENDAR; skipped"
            problems.append(Problem(where, block.begin if block else None, outside))
            continue
        converted = _standard(where, component, block, lines, problems)
        if converted is not None:
            events.extend(_pair(component, converted, block))
    return events


def _zone_twice(lines: EventLines) -> tuple[int, str] | None:
    """A VTIMEZONE naming two TZIDs (icalendar fails on it without saying where)."""
    for block in lines.blocks():
        tzids = block.props.get("TZID", []) if block.name == "VTIMEZONE" else []
        if len(tzids) > 1:
            return tzids[1], f"VTIMEZONE with TZID given {len(tzids)} times"
    return None


def _standard(
    where: str, calendar: Any, block: Block | None, lines: EventLines, problems: list[Problem]
) -> Any:
    """The calendar with its X-WR-TIMEZONE applied (Google's way of saying which zone
    its floating and UTC times mean), or None if that zone is unknown."""
    import x_wr_timezone

    try:
        return x_wr_timezone.to_standard(calendar)
    except Exception:  # ZoneInfo refuses the name: a bad zone, or a path
        zone = calendar.get("X-WR-TIMEZONE", "")
        line = block.line("X-WR-TIMEZONE") if block else None
        message = f"unknown X-WR-TIMEZONE '{clean(str(zone), 60)}'; this calendar's events skipped"
        if isinstance(zone, list):
            message = f"X-WR-TIMEZONE given {len(zone)} times; this calendar's events skipped"
        problems.append(Problem(where, line, message))
        return None


def _pair(calendar: Any, converted: Any, block: Block | None) -> Iterator[_Event]:
    originals = calendar.walk("VEVENT")
    blocks = _event_blocks(block) if block is not None else []
    if len(blocks) != len(originals):
        blocks = []  # the text and the parser disagree: no lines rather than wrong ones
    method = str(calendar.get("METHOD", "")).upper()
    for index, (original, conv) in enumerate(zip(originals, converted.walk("VEVENT"), strict=True)):
        yield _Event(original, conv, blocks[index] if blocks else None, method)


def _event_blocks(block: Block) -> list[Block]:
    found: list[Block] = []
    for child in block.children:
        if child.name == "VEVENT":
            found.append(child)
        found.extend(_event_blocks(child))
    return found


def _line(event: _Event, prop: str) -> int | None:
    if event.block is None:
        return None
    if prop == "BEGIN":
        return event.block.begin
    return event.block.line(prop) or event.block.begin


def _checked(where: str, events: list[_Event], problems: list[Problem]) -> dict[str, list[_Event]]:
    """The events of each UID that can be scheduled; a bad event skips its UID."""
    good: dict[str, list[_Event]] = {}
    bad: set[str] = set()
    for event in events:
        uid = event.original.get("UID")
        if uid is None or isinstance(uid, list):
            message = "event without UID skipped" if uid is None else "UID given twice; skipped"
            problems.append(Problem(where, _line(event, "BEGIN"), message))
            continue
        uid = str(uid)
        if event.method in _ABOUT_AN_EVENT and "DTSTART" not in event.original:
            continue  # an iTIP reply or cancellation names no time: nothing to schedule
        try:
            reason = event_problem(event.original)
        except Exception as exc:  # untrusted input: report the event, keep the rest
            reason = ("BEGIN", f"unreadable event ({why_failed(exc)}); skipped")
        if reason is not None:
            problems.append(Problem(where, _line(event, reason[0]), reason[1]))
            bad.add(uid)
            continue
        good.setdefault(uid, []).append(event)
    return {uid: found for uid, found in good.items() if uid not in bad}


def _build(where: str, good: dict[str, list[_Event]], out: ParsedFile) -> None:
    """The series of each good UID, its master, its lines and what it costs."""
    import recurring_ical_events

    for uid, events in good.items():
        master = _master(events)
        line = _line(master or events[0], "RRULE")
        if line is not None:
            out.lines[uid] = line
        if master is not None:
            out.masters[uid] = master.original
            if master.block is not None:
                out.blocks[uid] = master.block
        # Overrides may carry rules of their own (RANGE=THISANDFUTURE): they cost too.
        out.costs[uid] = [cost for e in events for cost in rule_costs(e.converted)]
        for event in events:
            _note_move(event.converted, uid, out.moves)
        try:
            out.series.extend(recurring_ical_events.of(_only(events)).series)
        except Exception as exc:  # the library's errors vary; the message is all we keep
            message = f"bad recurrence rule: {why_failed(exc)}; event skipped"
            out.problems.append(Problem(where, line, message))


def _master(events: list[_Event]) -> _Event | None:
    """The event without RECURRENCE-ID of the highest SEQUENCE (the first on a tie):
    the one recurring-ical-events expands."""
    best: _Event | None = None
    for event in events:
        if "RECURRENCE-ID" in event.converted:
            continue
        if best is None or _sequence(event) > _sequence(best):
            best = event
    return best


def _sequence(event: _Event) -> int:
    try:
        return int(event.converted.get("SEQUENCE", -1))
    except (TypeError, ValueError):
        return -1


def _note_move(event: Any, uid: str, moves: dict[tuple[str, str], Any]) -> None:
    rid = event.get("RECURRENCE-ID")
    if rid is None or str(rid.params.get("RANGE", "")).upper() != "THISANDFUTURE":
        return
    with contextlib.suppress(TypeError, AttributeError, KeyError):
        moves[(uid, rid.to_ical().decode())] = event["DTSTART"].dt - rid.dt


def _only(events: list[_Event]) -> Any:
    """A calendar holding these (converted) events only."""
    import icalendar

    mini = icalendar.Calendar()
    for event in events:
        mini.add_component(event.converted)
    return mini


# -- the libraries' own warnings --------------------------------------------------------


@contextlib.contextmanager
def library_warnings(where: str, problems: list[Problem]) -> Iterator[None]:
    """Turn the calendar libraries' Python warnings into one-line problems of this file.

    Silenced, as they carry no news: a "globally unique" TZID such as
    `/freeassociation.sourceforge.net/Europe/Berlin` taken as the zone it ends with
    (what libical, Evolution and Thunderbird mean by it), and deprecations inside the
    libraries. A warning raised by other code meanwhile is passed on unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        name = warning.category.__name__
        if name == "GloballyUniqueTZIDGuessed" or issubclass(warning.category, DeprecationWarning):
            continue
        if not _from_library(warning.filename):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
            continue
        problem = Problem(where, None, f"{name}: {clean(str(warning.message))}")
        if problem not in problems:
            problems.append(problem)


def _from_library(filename: str) -> bool:
    parts = Path(filename).parts
    return any(
        p in ("icalendar", "recurring_ical_events", "dateutil", "x_wr_timezone.py") for p in parts
    )
