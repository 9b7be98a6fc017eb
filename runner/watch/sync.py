"""Background CalDAV sync for the watch loop.

Every `sync_every`, in its own thread, pull the CalDAV calendars into their snapshots
(calendars/sync.py). The loop never waits for it: it keeps firing from the last
snapshot, and reacts to the files a sync writes like to any other edit. A server
that is down is reported once per outage (not once per attempt), retried with
backoff, and reported again when it is back.
"""

from __future__ import annotations

import threading
import time

from runner.events import EventSink, Failed, Synced
from runner.home import Home
from runner.settings import Settings

FIRST_RETRY = 15.0  # seconds; doubles per failed attempt, capped at sync_every


def caldav_names(settings: Settings) -> list[str]:
    return [c.name for c in settings.calendars or () if c.is_caldav]


class BackgroundSync:
    def __init__(self, home: Home, settings: Settings, emit: EventSink) -> None:
        self.home = home
        self.settings = settings
        self.emit = emit
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._failing: dict[str, str] = {}  # calendar → error, while an outage lasts
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)

    @property
    def enabled(self) -> bool:
        return bool(caldav_names(self.settings))

    def start(self) -> bool:
        """Start syncing; False when there is nothing to sync or no sync engine."""
        if not self.enabled:
            return False
        try:
            from runner.calendars import sync  # noqa: F401  (built separately; optional here)
        except ImportError:
            self.emit(Failed("CalDAV sync is not available; using snapshots"))
            return False
        self._thread.start()
        return True

    def poke(self) -> None:
        """Sync now (after a wake from sleep: the calendars may have moved on)."""
        self._poke.set()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.sync_once()
            self._poke.wait(delay)
            self._poke.clear()

    def sync_once(self) -> float:
        """One sync of every CalDAV calendar; returns the seconds until the next."""
        from runner.calendars.sync import sync_all

        started = time.monotonic()
        try:
            result = sync_all(self.home, self.settings)
            errors = {c.name: c.error for c in result.calendars if c.error is not None}
            changes = sum(c.added + c.changed + c.deleted for c in result.calendars)
        except Exception as exc:  # a bug or an OS error: the loop must keep firing
            errors = {name: str(exc) for name in caldav_names(self.settings)}
            changes = 0
        self._report(errors, changes, time.monotonic() - started)
        if not errors:
            self._failures = 0
            return self.settings.sync_every
        self._failures += 1
        backoff: float = FIRST_RETRY * 2.0 ** (self._failures - 1)
        return min(self.settings.sync_every, backoff)

    def _report(self, errors: dict[str, str], changes: int, seconds: float) -> None:
        for name, error in errors.items():
            if self._failing.get(name) is None:
                self.emit(Failed(f"sync failed: {error}", calendar=name))
        recovered = sorted(set(self._failing) - set(errors))
        self._failing = dict(errors)
        if not errors or changes or recovered:
            self.emit(Synced(not errors, changes, recovered, round(seconds, 3)))
