"""`runner watch`: the loop that fires occurrences on time.

The loop keeps one thing in mind, the next moment something is due (plan.next_wakeup),
and waits for it on an Event that file changes and finished runs also set. It does
its work in `step()`, which reads the injected clock and never sleeps, so the
decisions (what to fire when, what a gap in time means) are tested in-process with a
FakeClock.

Why it wakes at least every MAX_NAP seconds even with nothing due: Python's waits run
on the monotonic clock, which stops while the machine is suspended, and a wall-clock
jump (NTP, a user, a time zone change) moves due times without waking anyone. Each
step compares how far the wall clock and the monotonic clock moved; when they
disagree by more than GAP the calendars are rescanned and the plan is made afresh,
so after a suspend `catch_up` decides (in plan.plan_due) what the missed occurrences
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
from types import FrameType

from runner.brain.cancellable import CancellableBrain, warm
from runner.brain.protocol import Brain
from runner.brain.registry import make_brain
from runner.calendars.folders import calendar_refs
from runner.clock import Clock
from runner.deliver.heartbeat import Heartbeat
from runner.deliver.send import prewarm
from runner.errors import RunnerError, UsageError
from runner.events import EventSink, Failed, Started, Stopped, notify
from runner.home import Home
from runner.keys import session_id
from runner.run.history import SeriesBook
from runner.run.plan import SeriesWork, Verdict, verdict
from runner.run.series import run_series
from runner.schedule.cache import CalendarCache
from runner.settings import Settings
from runner.watch.files import ChangeBuffer, FileWatcher
from runner.watch.lock import acquire_watch_lock
from runner.watch.loop import STEP_BACKOFF, WatchLoop
from runner.watch.outbox import OutboxSender
from runner.watch.sync import BackgroundSync
from runner.watch.workers import SeriesPool

log = logging.getLogger("runner")

HEALTHY = 60.0  # seconds: a loop that has not stepped for this long is stuck: no heartbeat
DRAIN = 5.0  # seconds to let cancelled runs record `interrupted` at shutdown


class Watch:
    """The whole daemon: lock, brain, loop, file watcher, sync, workers, shutdown."""

    def __init__(
        self,
        home: Home,
        settings: Settings,
        clock: Clock,
        emit: EventSink,
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
        self._stepped = clock.monotonic()  # when the loop last stepped (heartbeat health)
        self._loop: WatchLoop | None = None
        self._outbox = OutboxSender(home, settings, clock)

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
        active = make_brain(settings.brain, home=self.home.root)
        warm(active)
        if settings.notify:
            prewarm()  # Apprise too: the first message then leaves at once
        brain = CancellableBrain(active)
        # disk=True: a restart re-expands only the files that changed meanwhile.
        cache = CalendarCache(self.home, disk=True)
        changes = ChangeBuffer(self.clock.monotonic, self._wake.set)
        sync = BackgroundSync(self.home, settings, self.emit)
        beat = self._heartbeat()
        emit = beat.watching(self.emit) if beat is not None else self.emit
        pool = self._pool(brain, emit)
        loop = self._loop = WatchLoop(
            self.home,
            settings,
            self.clock,
            cache,
            pool.submit,
            self.emit,
            changes,
            on_gap=lambda: self._woke(sync),
        )
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        watcher = FileWatcher(self.home, changes)
        watcher.start()  # before the first scan: nothing written meanwhile is missed
        self.emit(self._started(active, loop))
        loop.step()  # the first plan: what is due (or missed) now
        cache.save()
        release_memory()  # the first expansion of every calendar was the peak
        sync.start()
        if beat is not None:
            beat.start()
        self._outbox.start()  # and what a process that died left unsent
        try:
            self._serve(loop)
        finally:
            watcher.stop()
            sync.stop()
            if beat is not None:
                beat.stop()
        interrupted = self._shutdown(pool, brain)
        self._outbox.stop(self.settings.shutdown_grace)
        cache.save()
        self.emit(Stopped(interrupted))
        return 0

    def _woke(self, sync: BackgroundSync) -> None:
        """After a suspend or a clock jump: sync now, and send a kept failure whose
        retry the sleep made impossible."""
        sync.poke()
        self._outbox.poke()

    def _heartbeat(self) -> Heartbeat | None:
        """The `heartbeat:` pinger (deliver/heartbeat.py), healthy while the loop steps."""
        if self.settings.heartbeat is None:
            return None

        def healthy() -> bool:
            return self.clock.monotonic() - self._stepped < HEALTHY

        return Heartbeat(self.home, self.settings.heartbeat, self.clock, healthy, notify)

    def _pool(self, brain: CancellableBrain, emit: EventSink) -> SeriesPool[SeriesWork]:
        """The workers: each runs one series' work, then tells the loop it is free."""
        failed_runs: set[str] = set()  # series whose run left a new retry time

        def run_one(work: SeriesWork) -> None:
            try:
                if run_work(self.home, self.settings, work, brain, self.clock, emit):
                    failed_runs.add(work.key)
            except (RunnerError, OSError) as exc:
                # Nothing recorded, so no new retry time: an immediate re-plan would
                # hit the same error in a tight loop. The next plan tries again.
                self.emit(Failed(str(exc), key=work.key))
            finally:
                self._outbox.poke()  # a recovered run's notification, or another process's
                if self.on_series_done is not None:
                    self.on_series_done(work.key)

        def done(key: str) -> None:
            # Called by the pool after it released the series, so a re-plan can submit it.
            failed = key in failed_runs
            failed_runs.discard(key)
            assert self._loop is not None  # made before the pool takes work
            self._loop.run_finished(key, failed)
            self._wake.set()

        return SeriesPool(self.settings.workers, run_one, done)

    def _started(self, active: Brain, loop: WatchLoop) -> Started:
        return Started(
            home=str(self.home.root),
            pid=os.getpid(),
            brain=active.name,
            model=self.settings.brain.model,
            described=active.describe(),
            calendars=[r.name for r in calendar_refs(self.home, self.settings)],
            next=loop.upcoming(3),  # the first scan of the calendars
            workers=self.settings.workers,
        )

    def _serve(self, loop: WatchLoop) -> None:
        """Step the loop until stopped; wake early for file changes and finished runs."""
        while not self._stop.is_set():
            self._wake.clear()
            self._stepped = self.clock.monotonic()
            try:
                nap = loop.step()
            except Exception as exc:
                # A daemon must outlive a bug or data nobody foresaw: report it, back
                # off, and plan afresh, rather than die with runs half-handled.
                log.debug("the watch loop's step failed", exc_info=True)
                self.emit(Failed(f"unexpected error, retrying: {exc!r}"))
                nap = STEP_BACKOFF
            self._outbox.poke_if_due()
            if not self._stop.is_set():
                self._wake.wait(nap)

    def _shutdown(self, pool: SeriesPool[SeriesWork], brain: CancellableBrain) -> list[str]:
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
                notify(f"runs still busy at exit: {busy}")
        # A run refused before its call started is interrupted too, not only a cut one.
        return [key for key in running if session_id(key) in brain.interrupted_sessions]


def run_work(
    home: Home, settings: Settings, work: SeriesWork, brain: Brain, clock: Clock, emit: EventSink
) -> bool:
    """Run one series' due work (in a worker); True when a retry time is new to the
    loop: a run failed, or an occurrence planned as `running` turned out to be an
    interrupted run (a crash), recovered as failed under the series lock."""
    outcomes = run_series(home, settings, work, brain, clock, on_event=emit)
    if not all(o.ok for o in outcomes):
        return True
    ran = {o.task_id for o in outcomes}
    left = [o for o in work.occurrences if o.task_id not in ran]
    if not left:
        return False
    book, now = SeriesBook(home, work.key), clock.now()
    return any(verdict(home, settings, book, o, now)[0] == Verdict.WAIT for o in left)


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
    emit: EventSink,
    on_series_done: Callable[[str], None] | None = None,
) -> int:
    """The domain function behind `runner watch`; returns the exit code."""
    return Watch(home, settings, clock, emit, on_series_done=on_series_done).run()
