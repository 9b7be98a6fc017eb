"""What the runner tells a person: one event type per kind, and one channel for them.

`tick` and the watch report through an `EventSink` (a callable taking an Event) that
the command gives them; the CLI renders every event once, as a line for people or as
a JSON line (runner/cli/events_view.py). What the domain has to tell a person outside
those passes (a torn log tail set aside, a recovered run, a compression, a brain's
retry) is a `Notice`, sent with `notify()` to the process's notice sink, so that
`watch --json` carries it too. The `logging` logger is only for `--debug`.

The notice sink is process-wide rather than a contextvar: the watch runs series in
worker threads and syncs in another, and a new thread does not inherit its creator's
context, so a contextvar set by the command would not reach them. One command runs
per process, and `notices_to()` restores the previous sink when it ends (tests nest
it). Without a sink a notice is a line on stderr.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

_OPTIONAL = "runner.optional"  # left out of the JSON when None


def optional() -> Any:
    """A field left out of the JSON when None: `calendar: str | None = optional()`."""
    return field(default=None, metadata={_OPTIONAL: True})


@dataclass(frozen=True)
class Event:
    KIND: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """`{"event": kind, ...fields}`; the renderer adds the time and the version."""
        out: dict[str, Any] = {"event": self.KIND}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get(_OPTIONAL):
                continue
            out[f.name] = value
        return out


EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class OccurrenceEvent(Event):
    """An event about one occurrence: its task, series, title, calendar and time."""

    task: str
    key: str
    title: str
    calendar: str
    fire_at: str


@dataclass(frozen=True)
class Fired(OccurrenceEvent):
    KIND: ClassVar[str] = "fired"
    attempt: int


@dataclass(frozen=True)
class Finished(OccurrenceEvent):
    KIND: ClassVar[str] = "finished"
    status: str
    final: bool  # no retry follows: a success, or a failure past its last retry
    error: str | None
    usage: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class StepDone(Event):
    """One tool call of a running occurrence finished (and is journaled)."""

    KIND: ClassVar[str] = "step"
    task: str
    key: str
    tool: str
    subject: str  # the path, glob, pattern... the call is about
    is_error: bool
    output_bytes: int
    error: str | None = optional()  # a failed call's result, short


@dataclass(frozen=True)
class Skipped(OccurrenceEvent):
    """Missed, and not run per `catch_up`."""

    KIND: ClassVar[str] = "skipped"


@dataclass(frozen=True)
class Cancelled(Event):
    """A pending task whose occurrence is gone (its event was deleted)."""

    KIND: ClassVar[str] = "cancelled"
    task: str
    key: str
    title: str


@dataclass(frozen=True)
class ProblemFound(Event):
    """A file that does not load; the others go on."""

    KIND: ClassVar[str] = "problem"
    message: str
    task: str | None = optional()
    path: str | None = optional()
    line: int | None = optional()

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Synced(Event):
    KIND: ClassVar[str] = "sync"
    ok: bool
    changes: int
    recovered: list[str]
    seconds: float


@dataclass(frozen=True)
class ClockMoved(Event):
    """The wall clock and the monotonic clock disagree: a suspend or a clock change."""

    KIND: ClassVar[str] = "clock"
    skew: float
    reason: str


@dataclass(frozen=True)
class Notice(Event):
    """Something a person should hear; `level` is info, warning or error."""

    KIND: ClassVar[str] = "notice"
    message: str
    level: str = "warning"
    key: str | None = optional()  # the series it is about, where there is one


@dataclass(frozen=True)
class Started(Event):
    KIND: ClassVar[str] = "started"
    home: str
    pid: int
    brain: str
    model: str
    described: str  # how the brain is shown to a person: "anthropic (claude-…)"
    calendars: list[str]
    next: list[dict[str, Any]]
    workers: int


@dataclass(frozen=True)
class Stopped(Event):
    KIND: ClassVar[str] = "stopped"
    interrupted: list[str]


@dataclass(frozen=True)
class Failed(Event):
    """Something went wrong that the watch survives (a sync, a series, a step)."""

    KIND: ClassVar[str] = "error"
    message: str
    calendar: str | None = optional()
    key: str | None = optional()


# -- the notice channel ----------------------------------------------------------------

_lock = threading.Lock()
_sink: EventSink | None = None


def notify(message: str, level: str = "warning", key: str | None = None) -> None:
    """Tell a person `message` (see the module docstring for where it goes)."""
    event = Notice(message, level, key)
    with _lock:
        sink = _sink
    if sink is not None:
        sink(event)
    else:
        sys.stderr.write(notice_line(event) + "\n")
        sys.stderr.flush()


def notice_line(event: Notice) -> str:
    return f"warning: {event.message}" if event.level != "info" else event.message


@contextmanager
def notices_to(sink: EventSink | None) -> Iterator[None]:
    """Send every notice of this process to `sink` (None: stderr) until the block ends."""
    global _sink
    with _lock:
        previous, _sink = _sink, sink
    try:
        yield
    finally:
        with _lock:
            _sink = previous
