"""`runner watch`: the loop that fires occurrences on time.

The loop keeps one thing in mind, the next moment something is due (tick.next_wakeup),
and waits for it on an Event that file changes and finished runs also set. It does
its work in `step()`, which reads the injected clock and never sleeps, so the
decisions (what to fire when, what a gap in time means) are tested in-process with a
FakeClock.

Why it wakes at least every MAX_NAP seconds even with nothing due: Python's waits run
on the monotonic clock, which stops while the machine is suspended, and a wall-clock
jump (NTP, a user, a time zone change) moves due times without waking anyone. Each
step compares how far the wall clock and the monotonic clock moved; when they
disagree by more than GAP the calendars are rescanned and the plan is made afresh,
so after a suspend `catch_up` decides (in tick.plan_due) what the missed occurrences
become. Waking every two seconds costs a few microseconds of CPU.

Runs never block the loop: each due series is handed to a SeriesPool (workers.py).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from . import tick
from .brain import Brain, choose_provider, make_brain
from .calendars.reader import CalendarCache, Calendars, calendar_refs
from .check import Problem
from .claims import SeriesBook
from .clock import Clock, utc_iso
from .errors import RunnerError, UsageError
from .home import Home
from .keys import session_id
from .plan import WAIT, verdict
from .schedule import occurrences_between
from .settings import Settings
from .watcher import ChangeBuffer, FileWatcher
from .watchlock import acquire_watch_lock
from .watchsync import BackgroundSync
from .workers import CancellableBrain, SeriesPool, warm

log = logging.getLogger("runner")

MAX_NAP = 2.0  # seconds: the longest wait, so a suspend or a clock jump is seen quickly
GAP = 1.0  # seconds of disagreement between wall and monotonic time that mean a gap
RESCAN_EVERY = 180.0  # seconds: a full list+stat, since inotify can drop events
BANNER_DAYS = 7  # how far ahead the banner looks for the next occurrences
DRAIN = 5.0  # seconds to let cancelled runs record `interrupted` at shutdown
STEP_BACKOFF = 5.0  # seconds before planning again after an unexpected error

Emit = Callable[[str, dict[str, Any]], None]
Submit = Callable[[tick.SeriesWork], bool]


class WatchLoop:
    """The decisions of the watch loop, driven by `step()`; no threads of its own."""

    def __init__(
        self,
        home: Home,
        settings: Settings,
        clock: Clock,
        cache: CalendarCache,
        submit: Submit,
        emit: Emit,
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
        self.emit(
            "clock",
            {
                "skew": round(skew, 3),
                "reason": "suspend or clock change" if skew > 0 else "clock set back",
            },
        )
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
            for work in tick.plan_due(self.home, self.settings, self.calendars, now, problems):
                with self._lock:
                    if not self.submit(work):
                        self._deferred.add(work.key)  # still running: planned when it ends
            self.next_due = tick.next_wakeup(self.home, self.settings, self.calendars, now)
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
                self.emit("problem", {"message": message})
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


class Watch:
    """The whole daemon: lock, brain, loop, file watcher, sync, workers, shutdown."""

    def __init__(
        self,
        home: Home,
        settings: Settings,
        clock: Clock,
        emit: Emit,
        on_series_done: Callable[[str], None] | None = None,
    ) -> None:
        self.home = home
        self.settings = settings
        self.clock = clock
        self.emit = emit
        self.on_series_done = on_series_done
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._signals = 0

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.stop()

    def run(self) -> int:
        if not self.home.root.is_dir():
            raise UsageError(f"no home at {self.home.root} (create one with: runner init)")
        with acquire_watch_lock(self.home):
            return self._run_locked()

    def _run_locked(self) -> int:
        settings = self.settings
        # Import and build the brain now, so the first run pays no import.
        active = make_brain(settings.brain)
        warm(active)
        brain = CancellableBrain(active)
        provider = choose_provider(settings.brain)
        # disk=True: a restart re-expands only the files that changed meanwhile.
        cache = CalendarCache(self.home, disk=True)
        changes = ChangeBuffer(self.clock.monotonic, self._wake.set)
        sync = BackgroundSync(self.home, settings, self.emit)

        loop: WatchLoop

        failed_runs: set[str] = set()  # series whose run left a new retry time

        def run_one(work: tick.SeriesWork) -> None:
            try:
                if run_work(self.home, settings, work, brain, self.clock, self.emit):
                    failed_runs.add(work.key)
            except (RunnerError, OSError) as exc:
                # Nothing recorded, so no new retry time: an immediate re-plan would
                # hit the same error in a tight loop. The next plan tries again.
                self.emit("error", {"key": work.key, "message": str(exc)})
            finally:
                if self.on_series_done is not None:
                    self.on_series_done(work.key)

        def done(key: str) -> None:
            # Called by the pool after it released the series, so a re-plan can submit it.
            failed = key in failed_runs
            failed_runs.discard(key)
            loop.run_finished(key, failed)
            self._wake.set()

        pool: SeriesPool[tick.SeriesWork] = SeriesPool(settings.workers, run_one, done)
        loop = WatchLoop(
            self.home,
            settings,
            self.clock,
            cache,
            pool.submit,
            self.emit,
            changes,
            on_gap=sync.poke,
        )
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        watcher = FileWatcher(self.home, changes)
        watcher.start()  # before the first scan: nothing written meanwhile is missed
        self.emit(
            "started",
            {
                "home": str(self.home.root),
                "pid": os.getpid(),
                "brain": provider,
                "model": settings.brain.model,
                "calendars": [r.name for r in calendar_refs(self.home, settings)],
                "next": loop.upcoming(3),  # the first scan of the calendars
                "workers": settings.workers,
            },
        )
        loop.step()  # the first plan: what is due (or missed) now
        cache.save()
        release_memory()  # the first expansion of every calendar was the peak
        sync.start()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    nap = loop.step()
                except Exception as exc:
                    # A daemon must outlive a bug or data nobody foresaw: report it, back
                    # off, and plan afresh, rather than die with runs half-handled.
                    log.debug("the watch loop's step failed", exc_info=True)
                    self.emit("error", {"message": f"unexpected error, retrying: {exc!r}"})
                    nap = STEP_BACKOFF
                if not self._stop.is_set():
                    self._wake.wait(nap)
        finally:
            watcher.stop()
            sync.stop()
        interrupted = self._shutdown(pool, brain)
        cache.save()
        self.emit("stopped", {"interrupted": interrupted})
        return 0

    def _shutdown(self, pool: SeriesPool[tick.SeriesWork], brain: CancellableBrain) -> list[str]:
        """Stop taking work; give running series `shutdown_grace`, then interrupt them."""
        pool.close()
        brain.refuse_new()
        running = sorted(pool.running_keys())
        if not running:
            return []
        if not pool.wait_idle(self.settings.shutdown_grace, abort=lambda: self._signals > 1):
            # The executor records each cancelled run as failed/`interrupted` under its
            # series lock (so it is retried); the workers then end their series.
            brain.cancel()
            if not pool.wait_idle(DRAIN):
                busy = ", ".join(sorted(pool.running_keys()))
                log.warning("runs still busy at exit: %s", busy)
        # A run refused before its call started is interrupted too, not only a cut one.
        return [key for key in running if session_id(key) in brain.interrupted_sessions]


def run_work(
    home: Home, settings: Settings, work: tick.SeriesWork, brain: Brain, clock: Clock, emit: Emit
) -> bool:
    """Run one series' due work (in a worker); True when a retry time is new to the
    loop: a run failed, or an occurrence planned as `running` turned out to be an
    interrupted run (a crash), recovered as failed under the series lock."""
    outcomes = tick.run_series(home, settings, work, brain, clock, on_event=emit)
    if not all(o.ok for o in outcomes):
        return True
    ran = {o.task_id for o in outcomes}
    left = [o for o in work.occurrences if o.task_id not in ran]
    if not left:
        return False
    book, now = SeriesBook(home, work.key), clock.now()
    return any(verdict(home, settings, book, o, now)[0] == WAIT for o in left)


def release_memory() -> None:
    """Hand memory freed after startup back to the OS: a daemon's resident size is
    what a user sees in `top` for days. glibc only; elsewhere a no-op."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def run_watch(
    home: Home,
    settings: Settings,
    clock: Clock,
    emit: Emit,
    on_series_done: Callable[[str], None] | None = None,
) -> int:
    """The domain function behind `runner watch`; returns the exit code."""
    return Watch(home, settings, clock, emit, on_series_done=on_series_done).run()
