"""A brain wrapper that lets shutdown interrupt a run at the brain call.

Shutdown cannot kill a thread blocked in an HTTP read. Instead every brain call runs
in a helper thread while the caller waits for either its answer or the cancel signal;
on cancel it raises `Cancelled` (a SystemExit), which the executor records as
`interrupted` under the series lock, as it does for Ctrl-C in `runner run`. The
abandoned helper thread dies with the process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from runner.brain.protocol import (
    Brain,
    BrainReply,
    BrainRequest,
    SummaryRequest,
    TextSink,
    runs_own_tools,
)
from runner.errors import RunnerError


def warm(brain: Brain) -> None:
    """Pay a brain's lazy imports now, so the first run at its due time does not.

    A broken credential is left for the first run to report as a failed execution.
    """
    with contextlib.suppress(RunnerError):
        brain.warm()


class Cancelled(SystemExit):
    """Raised in a worker when the watch shuts down while its brain call is pending."""

    def __init__(self) -> None:
        super().__init__("the watch is shutting down")


class CancellableBrain:
    """Wraps the active brain so that `cancel()` ends pending and future calls."""

    def __init__(self, inner: Brain) -> None:
        self.inner = inner
        self.name = inner.name
        self.runs_own_tools = runs_own_tools(inner)
        self._lock = threading.Lock()
        self._cancelled = False
        self._refusing = False
        self._waiting: set[threading.Event] = set()
        # Session ids of the runs this wrapper refused or cut off: at shutdown these
        # are the interrupted series, whether the signal came before or during a call.
        self.interrupted_sessions: set[str] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def refuse_new(self) -> None:
        """Calls already waiting for an answer go on; a new one raises Cancelled.

        At shutdown a series with several due occurrences must not start the next.
        """
        with self._lock:
            self._refusing = True

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            waiting = list(self._waiting)
        for done in waiting:
            done.set()

    def _call(self, fn: Callable[[], BrainReply], session: str | None = None) -> BrainReply:
        done = threading.Event()
        with self._lock:
            if self._cancelled or self._refusing:
                if session is not None:
                    self.interrupted_sessions.add(session)
                raise Cancelled()
            self._waiting.add(done)
        box: list[BrainReply] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                box.append(fn())
            except BaseException as exc:  # handed to the worker below
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=target, name="brain-call", daemon=True).start()
        try:
            done.wait()
        finally:
            with self._lock:
                self._waiting.discard(done)
        if box:
            return box[0]
        if failure:
            raise failure[0]
        if session is not None:
            with self._lock:
                self.interrupted_sessions.add(session)
        raise Cancelled()

    def describe(self, model: str | None = None) -> str:
        return self.inner.describe(model)

    def warm(self) -> None:
        self.inner.warm()

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        return self._call(lambda: self.inner.complete(request, on_text), request.session_id)

    def count_tokens(self, request: BrainRequest) -> int:
        return self.inner.count_tokens(request)

    def summarize(self, request: SummaryRequest) -> BrainReply:
        return self._call(lambda: self.inner.summarize(request))
