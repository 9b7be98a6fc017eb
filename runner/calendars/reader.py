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
import json
import os
import re
from dataclasses import dataclass, field
from datetime import time, tzinfo
from pathlib import Path
from typing import Any

from ..check import Problem
from ..errors import RunnerError
from ..fsutil import atomic_write
from ..home import Home
from ..localzone import local_zone, zone_name
from ..settings import Settings, load_settings

CACHE_VERSION = 1
_TIME_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class CalendarRef:
    name: str
    folder: Path
    source: str  # caldav | local


def calendar_refs(home: Home, settings: Settings) -> list[CalendarRef]:
    """The calendars of this home, in settings order (or folder-name order)."""
    if settings.calendars is not None:
        return [
            CalendarRef(c.name, home.calendars / c.name, "caldav" if c.is_caldav else "local")
            for c in settings.calendars
        ]
    if not home.calendars.is_dir():
        return []
    return [
        CalendarRef(entry.name, Path(entry.path), "local")
        for entry in sorted(os.scandir(home.calendars), key=lambda e: e.name)
        if entry.is_dir() and not entry.name.startswith(".")
    ]


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


class CalendarFile:
    """One .ics file of one calendar, as the cache knows it."""

    __slots__ = ("_parsed", "calendar", "expansion", "path", "problems", "signature", "source")

    def __init__(self, calendar: str, source: str, path: Path, signature: tuple[int, ...]) -> None:
        self.calendar = calendar
        self.source = source
        self.path = path
        self.signature = signature
        self._parsed: ParsedFile | None = None
        # Problems are known once parsed, or from the disk cache.
        self.problems: list[Problem] | None = None
        # schedule.py's cached expansion: (horizon start, end, occurrences), or None.
        self.expansion: Any = None

    def parsed(self) -> ParsedFile:
        if self._parsed is None:
            self._parsed = parse_file(self.path)
            self.problems = self._parsed.problems
        return self._parsed

    def release(self) -> None:
        """Forget the parse tree (it is parsed again if ever needed); keep problems."""
        self._parsed = None

    def ensure_problems(self) -> list[Problem]:
        if self.problems is None:
            self.parsed()
        return self.problems or []


@dataclass
class Calendars:
    """A snapshot of every calendar file, with what expansion needs to know."""

    files: tuple[CalendarFile, ...]
    all_day_at: time = time(9, 0)
    zone: tzinfo = field(default_factory=local_zone)
    folder_problems: tuple[Problem, ...] = ()

    @property
    def problems(self) -> list[Problem]:
        """Problems of every file, parsing those not yet parsed."""
        found = list(self.folder_problems)
        for f in self.files:
            found.extend(f.ensure_problems())
        return found


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    # Inode and ctime too: a rename-save of the same size within one mtime tick.
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)


def _list_ics(folder: Path) -> list[tuple[Path, tuple[int, ...]]]:
    out: list[tuple[Path, tuple[int, ...]]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.endswith(".ics"):
            continue  # editors' and sync tools' temp files
        with contextlib.suppress(OSError):
            if entry.is_file():
                out.append((Path(entry.path), _signature(entry.stat())))
    out.sort()
    return out


class CalendarCache:
    """Parsed calendar files keyed by (path, mtime_ns, size); cheap to refresh."""

    def __init__(self, home: Home, *, disk: bool = False) -> None:
        self.home = home
        self.disk = disk
        self.files: dict[Path, CalendarFile] = {}
        self._disk_entries: dict[str, Any] = {}
        self._zone_name = zone_name(local_zone())
        if disk:
            self._load_disk()

    @property
    def cache_path(self) -> Path:
        return self.home.state / "cache" / "calendars.json"

    def refresh(self, settings: Settings) -> Calendars:
        """List and stat every calendar folder; re-parse only changed files (lazily)."""
        seen: dict[Path, CalendarFile] = {}
        for ref in calendar_refs(self.home, settings):
            for path, signature in _list_ics(ref.folder):
                known = self.files.get(path)
                if (
                    known is None
                    or known.signature != signature
                    or known.calendar != ref.name
                    or known.source != ref.source
                ):
                    known = CalendarFile(ref.name, ref.source, path, signature)
                    self._adopt_disk_entry(known)
                seen[path] = known
        self.files = seen
        return Calendars(
            files=tuple(seen.values()), all_day_at=settings.all_day_at, zone=local_zone()
        )

    # -- the disk copy, for the next process -------------------------------------

    def _load_disk(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if (
                isinstance(data, dict)
                and data.get("version") == CACHE_VERSION
                and data.get("zone") == self._zone_name
                and isinstance(data.get("files"), dict)
            ):
                self._disk_entries = data["files"]

    def _adopt_disk_entry(self, cfile: CalendarFile) -> None:
        entry = self._disk_entries.get(str(cfile.path))
        if not isinstance(entry, dict) or entry.get("sig") != list(cfile.signature):
            return
        try:
            problems = [Problem(str(cfile.path), p[0], str(p[1])) for p in entry["problems"]]
        except (KeyError, TypeError, IndexError):
            return
        cfile.problems = problems
        cfile.expansion = entry.get("expansion")  # decoded by schedule.py when used

    def save(self) -> None:
        """Write the disk copy (best effort: the files stay the truth)."""
        if not self.disk:
            return
        from ..schedule import encode_expansion

        files: dict[str, Any] = {}
        for cfile in self.files.values():
            if cfile.problems is None or cfile.expansion is None:
                continue
            files[str(cfile.path)] = {
                "sig": list(cfile.signature),
                "problems": [[p.line, p.message] for p in cfile.problems],
                "expansion": encode_expansion(cfile.expansion),
            }
        if files == self._disk_entries:
            return
        document = {"version": CACHE_VERSION, "zone": self._zone_name, "files": files}
        with contextlib.suppress(OSError):
            atomic_write(self.cache_path, json.dumps(document, ensure_ascii=False))
            self._disk_entries = files


def load_calendars(home: Home, settings: Settings) -> Calendars:
    """Every calendar file of the home, without a cache kept across calls."""
    return CalendarCache(home).refresh(settings)


# -- parsing one file -------------------------------------------------------------


class _Lines:
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
    lines = _Lines(text)
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


def check_calendars(home: Home) -> tuple[int, list[Problem]]:
    """For `runner check`: every calendar file, parsed, with its problems."""
    try:
        settings = load_settings(home.settings_file)
    except RunnerError:  # reported by the settings check; check files with defaults
        settings = Settings()
    calendars = load_calendars(home, settings)
    problems = calendars.problems
    for cfile in calendars.files:
        problems.extend(_reference_problems(home, cfile))
    return len(calendars.files), problems


def _reference_problems(home: Home, cfile: CalendarFile) -> list[Problem]:
    """An event saying `task: <id>` whose task is missing: tick would warn every time."""
    from ..errors import FileError
    from ..keys import series_key
    from ..tick import load_reference, task_reference  # lazy: tick imports this module

    found: list[Problem] = []
    lines: _Lines | None = None
    for uid, event in cfile.parsed().masters.items():
        ref_id = task_reference(str(event.get("DESCRIPTION") or ""))
        if ref_id is None:
            continue
        try:
            load_reference(home, ref_id)
        except FileError:
            continue  # a broken task file: the task check reports it
        except RunnerError as exc:
            if lines is None:
                lines = _Lines(cfile.path.read_bytes().decode("utf-8-sig", "replace"))
            line = lines.of_event(uid, "DESCRIPTION")
            # The series key, not the UID: calendar text is not echoed raw to a terminal.
            where = f"event {series_key(uid)}"
            found.append(Problem(str(cfile.path), line, f"{where}: {exc.message}"))
    return found
