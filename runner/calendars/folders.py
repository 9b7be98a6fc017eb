"""Which calendars a home has, and the .ics files in each folder.

Every calendar in `runner.yaml` (CalDAV or not, its folder is `calendars/<name>/`), or,
with no `calendars` setting, every folder under calendars/ (so a vdir kept by
vdirsyncer works as is). Hidden files and editors' temp files are not calendar files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from runner.home import Home
from runner.settings import Settings


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


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    # Inode and ctime too: a rename-save of the same size within one mtime tick.
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)


def list_ics(folder: Path, suffix: str = ".ics") -> list[tuple[Path, tuple[int, ...]]]:
    out: list[tuple[Path, tuple[int, ...]]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.endswith(suffix):
            continue  # editors' and sync tools' temp files
        with contextlib.suppress(OSError):
            if entry.is_file():
                out.append((Path(entry.path), _signature(entry.stat())))
    out.sort()
    return out


def list_task_files(folder: Path) -> list[tuple[Path, tuple[int, ...]]]:
    """The hand-written task files (`tasks/*.yaml`), which may carry a `schedule:`."""
    return list_ics(folder, suffix=".yaml")
