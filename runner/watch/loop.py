"""The watch loop's decisions: what to fire when, and what a gap in time means.

`WatchLoop.step()` reads the injected clock and never sleeps, so every decision is
tested in-process with a FakeClock. daemon.py gives it threads, signals and a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from runner.clock import Clock, utc_iso
from runner.errors import Problem, RunnerError
from runner.events import ClockMoved, EventSink, ProblemFound
from runner.home import Home
from runner.run.plan import SeriesWork, next_wakeup, plan_due
from runner.schedule.cache import CalendarCache, Calendars
from runner.schedule.expand import occurrences_between
from runner.settings import Settings
from runner.watch.files import ChangeBuffer

MAX_NAP = 2.0  # seconds: the longest wait, so a suspend or a clock jump is seen quickly


GAP = 1.0  # seconds of disagreement between wall and monotonic time that mean a gap


RESCAN_EVERY = 180.0  # seconds: a full list+stat, since inotify can drop events


BANNER_DAYS = 7  # how far ahead the banner looks for the next occurrences


STEP_BACKOFF = 5.0  # seconds before planning again after an unexpected error


Submit = Callable[[SeriesWork], bool]


class WatchLoop:
    """The decisions of the watch loop, driven by `step()`; no threads of its own."""

    def __init__(
        self,
        home: Home,
        settings: Settings,
        clock: Clock,
        cache: CalendarCache,
        submit: Submit,
        emit: EventSink,
        changes: ChangeBuffer | None = None,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        self.home = home
        self.settings = settings
        self.clock = clock
        self.cache = cache
        self.submit = submit
        self.emit = emit
        self.changes = changes
        self.on_gap = on_gap
        self.calendars: Calendars | None = None
        self.next_due: datetime | None = None
        self.planned_at: datetime | None = None
        self._last: tuple[datetime, float] | None = None
        self._rescan = True
        self._next_rescan = 0.0
        self._replan = False  # a finished run asks for a new plan
        # Guards _deferred: a worker's run_finished must not slip between a refused
        # submit and the deferral it leads to, or the deferred work waits for a rescan.
        # Reentrant: a submit may finish its run at once and report it (tests do).
        self._lock = threading.RLock()
        self._deferred: set[str] = set()  # due while their series was still running
        self._reported: set[str] = set()  # the problems of the last plan
        self.plans = 0  # how many times plan_due ran (for tests and the bench)

    # -- inputs from other threads ------------------------------------------------

    def run_finished(self, key: str, failed: bool = False) -> None:
        """A series run ended (called from a worker thread).

        A new plan is needed only when more of that series came due while it ran, or
        when a run failed (its retry time is new). Otherwise the plan made at the due
        time still holds: re-planning after every run would cost a full plan per run.
        Call it once the series can be submitted again (the pool has released it).
        """
        with self._lock:
            if failed or key in self._deferred:
                self._deferred.discard(key)
                self._replan = True

    def rescan_soon(self) -> None:
        self._rescan = True

    # -- the step -------------------------------------------------------------------

    def step(self) -> float:
        """Look at the clock once, act, and return how long to wait (≤ MAX_NAP)."""
        now = self.clock.now()
        mono = self.clock.monotonic()
        need_plan = self._check_gap(now, mono)
        if self._rescan or mono >= self._next_rescan:
            self._rescan = False
            self._next_rescan = mono + RESCAN_EVERY
            self._refresh()
            need_plan = True
        if self.changes is not None and self.changes.due_in() == 0:
            self.changes.take()
            self._refresh()
            need_plan = True
        if self._replan:
            self._replan = False
            need_plan = True
        if self._is_due(now):
            need_plan = True
        if need_plan:
            self._plan(now)
        return self._nap(now, mono)

    def _check_gap(self, now: datetime, mono: float) -> bool:
        last = self._last
        self._last = (now, mono)
        if last is None:
            return False
        wall_moved = (now - last[0]).total_seconds()
        mono_moved = mono - last[1]
        skew = wall_moved - mono_moved
        if abs(skew) < GAP:
            return False
        # Forward: a suspend (monotonic stopped) or a jump ahead; backward: a jump back.
        reason = "suspend or clock change" if skew > 0 else "clock set back"
        self.emit(ClockMoved(round(skew, 3), reason))
        self._rescan = True
        if self.on_gap is not None:
            self.on_gap()
        return True

    def _is_due(self, now: datetime) -> bool:
        if self.next_due is None or now < self.next_due:
            return False
        # A due time at or before the last plan is work already handed out (its run
        # is in flight): a finished run triggers the next plan, not the clock.
        return self.planned_at is None or self.next_due > self.planned_at

    def _refresh(self) -> None:
        self.calendars = self.cache.refresh(self.settings)

    def _plan(self, now: datetime) -> None:
        if self.calendars is None:
            self._refresh()
        assert self.calendars is not None
        self.plans += 1
        problems: list[Problem] = []
        messages: list[str] = []
        try:
            for work in plan_due(self.home, self.settings, self.calendars, now, problems):
                with self._lock:
                    if not self.submit(work):
                        self._deferred.add(work.key)  # still running: planned when it ends
            self.next_due = next_wakeup(self.home, self.settings, self.calendars, now)
        except (RunnerError, OSError) as exc:
            messages.append(str(exc))
            self.next_due = now + timedelta(seconds=MAX_NAP)
        self.planned_at = now
        messages.extend(str(problem) for problem in [*self.calendars.problems, *problems])
        self._report(messages)

    def _report(self, messages: list[str]) -> None:
        # A broken neighbour file is reported once, not on every plan, and never stops
        # us. Only the last plan's problems are remembered: the set stays small over
        # days, and a file that is fixed and broken again is reported again.
        for message in dict.fromkeys(messages):
            if message not in self._reported:
                self.emit(ProblemFound(message))
        self._reported = set(messages)

    def _nap(self, now: datetime, mono: float) -> float:
        nap = MAX_NAP
        if self.next_due is not None and self._is_due_later(now):
            nap = min(nap, (self.next_due - now).total_seconds())
        if self.changes is not None:
            pending = self.changes.due_in()
            if pending is not None:
                nap = min(nap, pending)
        nap = min(nap, self._next_rescan - mono)
        return max(0.0, nap)

    def _is_due_later(self, now: datetime) -> bool:
        assert self.next_due is not None
        return self.planned_at is None or self.next_due > self.planned_at

    # -- what the banner shows -------------------------------------------------------

    def upcoming(self, count: int = 3) -> list[dict[str, Any]]:
        if self.calendars is None:
            self._refresh()
        assert self.calendars is not None
        now = self.clock.now()
        found = occurrences_between(self.calendars, now, now + timedelta(days=BANNER_DAYS))
        return [
            {
                "at": utc_iso(o.fire_at),
                "title": o.title,
                "calendar": o.calendar,
                "task": o.task_id,
            }
            for o in found[:count]
        ]
