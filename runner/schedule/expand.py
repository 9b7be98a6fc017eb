"""Occurrences: calendar events expanded into the moments they fire.

Expansion is recurring-ical-events' job (never hand-rolled RRULE logic), queried with
timezone-aware bounds in the local zone: TZID times keep their zone, floating times
are local wall time, all-day events fire at `all_day_at` local time. An occurrence's
identity is (UID, original start = RECURRENCE-ID): a moved occurrence keeps its
stamp, and an override's own SUMMARY and DESCRIPTION win over the master's.

Each calendar file keeps its last expansion over a horizon wider than the window
asked for (CalendarFile.expansion), so the watch loop and `runner next` re-expand
only files that changed or windows that moved past the horizon. The expansion can
also live in the disk cache (reader.CalendarCache), encoded by `encode_expansion`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runner import keys
from runner.calendars.lines import where as file_where
from runner.calendars.lines import why_failed
from runner.calendars.parse import ParsedFile, library_warnings
from runner.clock import zone_name
from runner.errors import Problem
from runner.schedule.cache import CalendarFile, Calendars
from runner.schedule.occurrence import Occurrence, fire_time
from runner.schedule.stored import Expansion, time_value

# An all-day event fires on its day; a floating one in local time: both can sit up to
# a day (and a zone offset) away from the UTC window, so the query span is widened.
_BEFORE = timedelta(hours=26)
_AFTER = timedelta(hours=2)
# An expansion covers more than was asked, so the next window is usually served
# from it (the watch loop asks often; `next` and `tick` ask similar windows).
_HORIZON_BEFORE = timedelta(days=3)  # tick.py's cancellation check looks this far back
_HORIZON_AFTER = timedelta(days=8)
# One series may not expand to more than this over a horizon (12 to 20 days): a
# minutely event is at most ~29,000; a FREQ=SECONDLY typo (over a million) would
# stall every reader for minutes, the watch loop included.
MAX_PER_SERIES = 50_000
# dateutil steps through a rule from its DTSTART (about 300,000 steps a second here):
# a series costing more than this to reach the window is refused before a step is
# taken (a minutely rule from 69 days ago, a daily one from 270 years ago).
MAX_STEPS = 100_000


def occurrences_between(calendars: Calendars, start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence with `start <= fire_at < end`, sorted by fire time.

    Bad series are reported once on the file's problems and skipped.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("occurrences_between needs timezone-aware bounds")
    found: list[Occurrence] = []
    for cfile in calendars.files:
        found.extend(file_occurrences(cfile, calendars, start, end))
    found.sort(key=Occurrence.sort_key)
    return found


def file_occurrences(
    cfile: CalendarFile, calendars: Calendars, start: datetime, end: datetime
) -> list[Occurrence]:
    span_start, span_end = start - _BEFORE, end + _AFTER
    at = calendars.all_day_at.strftime("%H:%M") + " " + zone_name(calendars.zone)
    expansion = cfile.expansion
    if isinstance(expansion, dict):  # from the disk cache: filter before decoding
        try:
            cached = _from_disk(cfile, expansion, at, span_start, span_end, start, end)
        except (KeyError, TypeError, ValueError, IndexError):
            cached = None  # a corrupt cache entry is ignored
        if cached is not None:
            return cached
    elif isinstance(expansion, Expansion) and expansion.covers(at, span_start, span_end):
        return [o for o in expansion.occurrences if start <= o.fire_at < end]
    horizon = Expansion(at, span_start - _HORIZON_BEFORE, span_end + _HORIZON_AFTER, [])
    horizon.occurrences = _expand(cfile, calendars, horizon.start, horizon.end)
    cfile.expansion = horizon
    return [o for o in horizon.occurrences if start <= o.fire_at < end]


def _expand(
    cfile: CalendarFile, calendars: Calendars, start: datetime, end: datetime
) -> list[Occurrence]:
    parsed = cfile.parsed()
    lo, hi = start.astimezone(calendars.zone), end.astimezone(calendars.zone)
    out: list[Occurrence] = []
    shared: dict[str, str] = {}  # one copy of each title, description and UID per file
    where = file_where(cfile.path)
    with library_warnings(where, parsed.problems):
        for series in parsed.series:
            uid = str(series.uid)
            try:
                _within_budget(parsed, uid, hi)
                out.extend(_series_occurrences(cfile, calendars, parsed, series, lo, hi, shared))
            except Exception as exc:  # calendar data is untrusted: a bad series is skipped alone
                message = f"cannot be expanded ({why_failed(exc)}); event skipped"
                problem = Problem(where, parsed.lines.get(uid), message)
                if problem not in parsed.problems:
                    parsed.problems.append(problem)
    # The parsed file is dropped once expanded: the horizon serves the next windows,
    # and a long-running watch loop should not hold every icalendar tree in memory.
    cfile.release()
    out.sort(key=Occurrence.sort_key)
    return out


def _within_budget(parsed: ParsedFile, uid: str, end: datetime) -> None:
    """Refuse a rule before dateutil steps through it: it steps from DTSTART, one
    instance at a time, so INTERVAL=0 or a minutely rule from year 1 never ends."""
    steps = sum(cost.steps_until(end.timestamp()) for cost in parsed.costs.get(uid, []))
    if steps > MAX_STEPS:
        raise ValueError(
            f"its rule steps through {steps:,.0f} instances from DTSTART to reach"
            f" {end:%Y-%m-%d}, more than {MAX_STEPS:,}: move DTSTART closer"
        )


def _series_occurrences(
    cfile: CalendarFile,
    calendars: Calendars,
    parsed: ParsedFile,
    series: Any,
    lo: datetime,
    hi: datetime,
    shared: dict[str, str],
) -> list[Occurrence]:
    items: list[Occurrence] = []
    for count, occurrence in enumerate(series.between(lo, hi)):
        if count >= MAX_PER_SERIES:
            raise ValueError(f"more than {MAX_PER_SERIES} in {(hi - lo).days} days")
        component = occurrence.as_component(False)
        item = _occurrence(cfile, parsed.masters, component, calendars, shared, parsed.moves)
        if item is not None:
            items.append(item)
    return items


def _text(component: Any, master: Any, name: str, shared: dict[str, str]) -> str:
    value = component.get(name)
    if value is None and master is not None:
        value = master.get(name)
    text = "" if value is None else str(value)
    return shared.setdefault(text, text)


def _occurrence(
    cfile: CalendarFile,
    masters: dict[str, Any],
    component: Any,
    calendars: Calendars,
    shared: dict[str, str],
    moves: dict[tuple[str, str], Any] | None = None,
) -> Occurrence | None:
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return None
    uid = _text(component, None, "UID", shared)
    actual = component["DTSTART"].dt
    rid = component["RECURRENCE-ID"]
    original = rid.dt
    move = moves.get((uid, rid.to_ical().decode())) if moves else None
    if move is not None:  # an instance of a RANGE=THISANDFUTURE override: undo its move
        original = actual - move
    master = masters.get(uid)
    key = cfile.fixed_key or shared.get("\0key:" + uid)
    if key is None:
        key = shared["\0key:" + uid] = keys.series_key(uid)
    return Occurrence(
        uid=uid,
        calendar=cfile.calendar,
        series_key=key,
        stamp=keys.stamp(original),
        original_start=original,
        start=actual,
        fire_at=fire_time(actual, calendars.all_day_at, calendars.zone),
        title=_text(component, master, "SUMMARY", shared),
        description=_text(component, master, "DESCRIPTION", shared),
        source=cfile.source,
        path=cfile.path,
    )


# -- the disk form of an expansion ---------------------------------------------------


def _from_disk(
    cfile: CalendarFile,
    doc: dict[str, Any],
    at: str,
    span_start: datetime,
    span_end: datetime,
    start: datetime,
    end: datetime,
) -> list[Occurrence] | None:
    if doc["at"] != at or not (
        doc["start"] <= span_start.timestamp() and span_end.timestamp() <= doc["end"]
    ):
        return None
    lo, hi = start.timestamp(), end.timestamp()
    events = doc["events"]
    keys_of: dict[int, str] = {}
    out: list[Occurrence] = []
    for fire, index, stamp, orig, orig_zone, actual, actual_zone in doc["rows"]:
        if not lo <= fire < hi:
            continue
        uid, title, description, *known_key = events[index]
        if index not in keys_of:
            keys_of[index] = known_key[0] if known_key else keys.series_key(uid)
        out.append(
            Occurrence(
                uid=uid,
                calendar=cfile.calendar,
                series_key=keys_of[index],
                stamp=stamp,
                original_start=time_value(orig, orig_zone),
                start=time_value(actual, actual_zone),
                fire_at=datetime.fromtimestamp(fire, UTC),
                title=title,
                description=description,
                source=cfile.source,
                path=cfile.path,
            )
        )
    return out
