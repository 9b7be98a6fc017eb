"""File reactions for the watch loop: watchdog (inotify where available) on calendars/
and tasks/, filtered and debounced.

Editors save in many ways: in place, or by writing a temp file and renaming it over
the original (vim's `4913` probe, `.name.swp`, `name~` backups, emacs `#name#` and
`.#name`, our own `.name.xxx.tmp`). Only the destination path of a move counts, and
only `.ics` files under calendars/ (and calendar folders), and hand-written
`tasks/<id>.yaml` files count. Everything else is noise, including the occurrence
files the runner itself writes under tasks/<series>/.

Events only say "look again soon"; the loop then refreshes its CalendarCache (list +
stat, re-parse what changed). inotify drops events when its queue overflows, so the
loop also rescans on a timer and after a wake from sleep; events are a fast path,
never the only path.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from runner.home import Home

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

# Wait this long after the last event for a burst (an editor's save, a sync writing many
# files) to settle, but never longer than MAX_DELAY after the first event: an edited
# file must change the schedule within a second.
QUIET = 0.1
MAX_DELAY = 0.4

WATCHED = ("calendars", "tasks")
_SUFFIX = {"calendars": ".ics", "tasks": ".yaml"}
_EDITOR_SUFFIXES = (".tmp", ".swp", ".swx", ".swo", ".swn", "~", ".bak", ".part")


def is_noise_name(name: str) -> bool:
    """Temp, swap, backup and lock files of editors and of our own atomic writes."""
    return (
        not name
        or name.startswith(".")  # hidden: .name.swp, .#name, .name.xxx.tmp
        or name == "4913"  # vim's "can I write here" probe
        or (name.startswith("#") and name.endswith("#"))  # emacs autosave
        or name.endswith(_EDITOR_SUFFIXES)
    )


def is_relevant(home: Home, path: str | PurePath, is_directory: bool) -> bool:
    """Does a change at `path` affect the schedule?"""
    try:
        rel = PurePath(path).relative_to(home.root)
    except ValueError:
        return False
    parts = rel.parts
    if not parts or parts[0] not in WATCHED:
        return False
    if any(is_noise_name(part) for part in parts[1:]):
        return False
    if len(parts) == 1:
        return True  # calendars/ or tasks/ itself was replaced
    if parts[0] == "tasks" and (len(parts) > 2 or is_directory):
        # tasks/<series>/ holds the runner's own occurrence files: our writes must not
        # wake us, and whether an occurrence ran is decided by the log and claims.
        return False
    if is_directory:
        return True  # a calendar folder added, moved or removed
    return parts[-1].endswith(_SUFFIX[parts[0]])


class ChangeBuffer:
    """Relevant paths seen since the loop last looked, with debounce timing.

    Filled by the watchdog thread, drained by the loop; `monotonic` is injected so
    the timing is testable without sleeping.
    """

    def __init__(self, monotonic: Callable[[], float], wake: Callable[[], None]) -> None:
        self._monotonic = monotonic
        self._wake = wake
        self._lock = threading.Lock()
        self._paths: set[Path] = set()
        self._first: float | None = None
        self._last: float | None = None

    def add(self, path: Path) -> None:
        now = self._monotonic()
        with self._lock:
            self._paths.add(path)
            if self._first is None:
                self._first = now
            self._last = now
        self._wake()

    def due_in(self) -> float | None:
        """Seconds until the buffered changes should be handled; None when empty."""
        with self._lock:
            if self._first is None or self._last is None:
                return None
            now = self._monotonic()
            return max(0.0, min(self._last + QUIET, self._first + MAX_DELAY) - now)

    def take(self) -> set[Path]:
        with self._lock:
            paths, self._paths = self._paths, set()
            self._first = self._last = None
        return paths


class ChangeHandler(FileSystemEventHandler):
    """Turns watchdog events into relevant paths in a ChangeBuffer."""

    def __init__(self, home: Home, buffer: ChangeBuffer) -> None:
        self.home = home
        self.buffer = buffer

    def dispatch(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind not in ("created", "deleted", "moved", "closed", "modified"):
            return
        is_dir = event.is_directory
        if is_dir and kind == "modified":
            return  # a folder's mtime changes with every file in it: the file event counts
        paths = [event.src_path]
        if kind == "moved":
            # A rename-save: the destination is the file that matters; the source still
            # counts when it was a real file (moved away or renamed to a backup name).
            paths.append(event.dest_path)
        for raw in paths:
            if not raw:
                continue
            text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
            if is_relevant(self.home, text, is_dir):
                self.buffer.add(Path(text))


class FileWatcher:
    """watchdog observer over the home's calendars/ and tasks/ folders."""

    def __init__(self, home: Home, buffer: ChangeBuffer) -> None:
        self.home = home
        self.buffer = buffer
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        from watchdog.observers import Observer

        # On Linux no FileModifiedEvent: IN_MODIFY fires per write() while a file is
        # half written; IN_CLOSE_WRITE (FileClosedEvent) says the writer is done. And
        # never opened/closed-without-write events: our own reads must not wake us.
        wanted: list[type[FileSystemEvent]] = [
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
            FileClosedEvent,
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
        ]
        if not sys.platform.startswith("linux"):
            wanted.append(FileModifiedEvent)  # no close-write events elsewhere
        observer = Observer()
        handler = ChangeHandler(self.home, self.buffer)
        for name in WATCHED:
            folder = self.home.root / name
            folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(handler, str(folder), recursive=True, event_filter=wanted)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer = self._observer
        self._observer = None
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
