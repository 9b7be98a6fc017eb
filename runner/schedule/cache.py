"""Parsed calendar files and their expansions, cached: cheap to refresh, disposable.

`CalendarCache` keeps parsed files keyed by (path, mtime_ns, size). The watch loop
keeps one and calls `refresh()` often: that is a listing and a stat per file, and
only changed files are parsed again. Parsing is lazy: a file is parsed only when an
expansion needs it and no cached expansion (expand.py) covers the window, so a
warm `runner next` never imports icalendar at all. With `disk=True` the cache is
also kept under .runner/cache/ for the next process; it is disposable: a missing,
stale or corrupt cache file is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import time, tzinfo
from pathlib import Path
from typing import Any

from runner.calendars.folders import calendar_refs, list_ics, list_task_files
from runner.calendars.parse import ParsedFile, parse_file
from runner.clock import local_zone, zone_name
from runner.errors import Problem
from runner.fsutil import atomic_write
from runner.home import Home
from runner.schedule.scheduled import CALENDAR, has_schedule_key, parse_scheduled
from runner.schedule.stored import encode_expansion
from runner.settings import Settings

# 2: events carry their series key (scheduled tasks); 3: several VCALENDARs a file,
# problems at their own lines (a version-2 cache rejected such files whole).
CACHE_VERSION = 3


class CalendarFile:
    """One .ics file of one calendar, as the cache knows it."""

    __slots__ = (
        "_parsed",
        "calendar",
        "expansion",
        "fixed_key",
        "path",
        "problems",
        "scheduled",
        "signature",
        "source",
    )

    def __init__(
        self,
        calendar: str,
        source: str,
        path: Path,
        signature: tuple[int, ...],
        scheduled: bool = False,
    ) -> None:
        self.calendar = calendar
        self.source = source
        self.path = path
        self.signature = signature
        # A hand-written task file whose `schedule:` is its only event (scheduled.py);
        # its occurrences run under the task's own key, not one derived from a UID.
        self.scheduled = scheduled
        self.fixed_key: str | None = None
        self._parsed: ParsedFile | None = None
        # Problems are known once parsed, or from the disk cache.
        self.problems: list[Problem] | None = None
        # schedule.py's cached expansion: (horizon start, end, occurrences), or None.
        self.expansion: Any = None

    def parsed(self) -> ParsedFile:
        if self._parsed is None:
            if self.scheduled:
                self._parsed, self.fixed_key = parse_scheduled(self.path)
            else:
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


class CalendarCache:
    """Parsed calendar files keyed by (path, mtime_ns, size); cheap to refresh."""

    def __init__(self, home: Home, *, disk: bool = False) -> None:
        self.home = home
        self.disk = disk
        self.files: dict[Path, CalendarFile] = {}
        self._disk_entries: dict[str, Any] = {}
        self._probes: dict[Path, tuple[tuple[int, ...], bool]] = {}
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
            for path, signature in list_ics(ref.folder):
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
        for path, signature in list_task_files(self.home.tasks):
            if not self._has_schedule(path, signature):
                continue
            known = self.files.get(path)
            if known is None or known.signature != signature:
                known = CalendarFile(CALENDAR, "local", path, signature, scheduled=True)
                self._adopt_disk_entry(known)
            seen[path] = known
        self.files = seen
        return Calendars(
            files=tuple(seen.values()), all_day_at=settings.all_day_at, zone=local_zone()
        )

    def _has_schedule(self, path: Path, signature: tuple[int, ...]) -> bool:
        """Whether a task file has a top-level `schedule:` key (read once per change)."""
        known = self._probes.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        try:
            found = has_schedule_key(path.read_bytes())
        except OSError:
            found = False
        self._probes[path] = (signature, found)
        return found

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
