"""The watch loop's workers: a bounded pool that runs one series at a time per key,
and a brain wrapper that lets shutdown interrupt a run at the brain call.

The loop never waits for a run. It submits a series' due work here; at most
`workers` series run at once, and a series already queued or running is not taken
again until it is done (its next due occurrences are planned after it finishes, so
each run sees the ones before it).

Shutdown cannot kill a thread blocked in an HTTP read. Instead every brain call runs
in a helper thread while the worker waits for either its answer or the cancel
signal; on cancel the worker raises `Cancelled` (a SystemExit), which the executor's
run_locked records as `interrupted` under the series lock, as it does for Ctrl-C in
`runner run`. The abandoned helper thread dies with the process.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from runner.brain.cancellable import Cancelled
from runner.events import notify

log = logging.getLogger("runner")


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


W = TypeVar("W", bound=Keyed)


class SeriesPool(Generic[W]):
    """`size` daemon threads; one queued-or-running item per key at a time.

    Daemon threads, not concurrent.futures: at exit the interpreter joins a
    ThreadPoolExecutor's threads, and a run stuck in a network read would then hold
    the process past its shutdown deadline.
    """

    def __init__(
        self,
        size: int,
        run: Callable[[W], None],
        on_done: Callable[[str], None],
    ) -> None:
        self._run = run
        self._on_done = on_done
        self._queue: queue.SimpleQueue[W | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy: set[str] = set()  # queued or running
        self._running: set[str] = set()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"worker-{n}", daemon=True)
            for n in range(max(1, size))
        ]
        for thread in self._threads:
            thread.start()

    def is_busy(self, key: str) -> bool:
        with self._lock:
            return key in self._busy

    def busy_keys(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._busy)

    def running_keys(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._running)

    def submit(self, work: W) -> bool:
        """Queue `work` unless its series is already queued or running (or we closed)."""
        with self._lock:
            if self._closed or work.key in self._busy:
                return False
            self._busy.add(work.key)
        self._queue.put(work)
        return True

    def close(self) -> None:
        """Stop taking work; queued items that have not started are dropped."""
        with self._lock:
            self._closed = True
        for _ in self._threads:
            self._queue.put(None)

    def wait_idle(self, timeout: float, abort: Callable[[], bool] | None = None) -> bool:
        """Wait until nothing runs (after close: nothing will); True if idle in time.

        `abort` is asked twice a second: a second Ctrl-C ends the wait early.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0 or (abort is not None and abort()):
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    def _worker(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            with self._lock:
                if self._closed:
                    self._busy.discard(work.key)
                    self._idle.notify_all()
                    continue
                self._running.add(work.key)
            try:
                self._run(work)
            except Cancelled:
                pass  # recorded as interrupted by the executor
            except Exception as exc:
                # The operator's stderr shows the message only: name what went wrong.
                log.debug("a run of series %s failed", work.key, exc_info=True)
                notify(f"a run of series {work.key} failed unexpectedly: {exc!r}", "error")
            finally:
                with self._lock:
                    self._busy.discard(work.key)
                    self._running.discard(work.key)
                    self._idle.notify_all()
                self._on_done(work.key)
