"""How events look: one renderer for people (lines on stderr) and one for scripts
(JSON lines on stdout), shared by `tick` and `watch`.

Called from the loop, the workers and the sync thread, hence the lock. Calendar text
(titles) and messages are data: shown on one line, control characters escaped.
"""

from __future__ import annotations

import threading
from datetime import datetime

from runner.cli.render import JSON_VERSION, emit_json_line, notice, plain, tokens_text
from runner.clock import Clock, local_zone, parse_utc_iso, utc_iso
from runner.events import (
    Cancelled,
    ClockMoved,
    Event,
    Failed,
    Finished,
    Fired,
    Notice,
    ProblemFound,
    Skipped,
    Started,
    StepDone,
    Stopped,
    Synced,
    notice_line,
)
from runner.tools.steps import call_text


class EventView:
    """Renders events as lines for people (stderr), or as JSON lines (stdout).

    `stamped`: human lines begin with the local time (the watch; `tick` is one pass).
    """

    def __init__(self, clock: Clock, as_json: bool, stamped: bool = True) -> None:
        self.clock = clock
        self.as_json = as_json
        self.stamped = stamped
        self._lock = threading.Lock()
        # Human output folds a series' skipped occurrences into one line: after a
        # night away a minutely event would otherwise print hundreds.
        self._skipped: dict[str, list[str]] = {}

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.as_json:
                time = utc_iso(self.clock.now())
                emit_json_line({"version": JSON_VERSION, **event.to_json(), "time": time})
                return
            if isinstance(event, Skipped):
                self._skipped.setdefault(event.key, []).append(event.task)
                return
            if isinstance(event, Fired):
                self._flush(event.key)
            line = self.human(event)
            if line is not None:
                notice(line)

    def end_of_series(self, key: str) -> None:
        with self._lock:
            self._flush(key)

    def end(self) -> None:
        """Show what is still folded (the end of a `tick`)."""
        with self._lock:
            for key in list(self._skipped):
                self._flush(key)

    def _flush(self, key: str) -> None:
        skipped = self._skipped.pop(key, [])
        if len(skipped) == 1:
            notice(f"{self._at()}skipped  {skipped[0]} (missed; catch_up)")
        elif skipped:
            notice(f"{self._at()}skipped  {len(skipped)} missed occurrences of {key} (catch_up)")

    def _at(self) -> str:
        if not self.stamped:
            return ""
        return self.clock.now().astimezone(local_zone()).strftime("%H:%M:%S ")

    def human(self, event: Event) -> str | None:
        at = self._at()
        if isinstance(event, Started):
            return banner(event)
        if isinstance(event, Fired):
            return f"{at}fired    {event.task}  {plain(event.title)}".rstrip()
        if isinstance(event, Finished):
            took = f" in {event.seconds:.1f} s"
            tokens = f", tokens {tokens_text(event.usage)}" if event.usage else ""
            error = f": {plain(event.error)}" if event.error else ""
            return f"{at}finished {event.task}  {event.status}{took}{tokens}{error}"
        if isinstance(event, StepDone):
            call = call_text(event.tool, event.subject, event.output_bytes, event.error)
            return f"{at}tool     {event.task}  {plain(call)}"
        if isinstance(event, Cancelled):
            return f"{at}cancelled {event.task} (its event was deleted)"
        if isinstance(event, ProblemFound):
            return f"warning: {plain(str(event))}"
        if isinstance(event, Notice):
            return plain(notice_line(event))
        if isinstance(event, Failed):
            where = f"{event.calendar}: " if event.calendar else ""
            return f"{at}warning: {where}{plain(event.message)}"
        if isinstance(event, Synced):
            if event.recovered:
                return f"{at}sync ok again: {', '.join(event.recovered)}"
            return None  # routine syncs are quiet
        if isinstance(event, ClockMoved):
            return f"{at}clock moved {event.skew:+.0f} s ({event.reason}): catching up"
        if isinstance(event, Stopped):
            if event.interrupted:
                return f"{at}stopped; interrupted (will retry): {', '.join(event.interrupted)}"
            return f"{at}stopped"
        return None


def banner(event: Started) -> str:
    zone = local_zone()
    names = ", ".join(event.calendars) or "(none: add calendars/<name>/*.ics)"
    lines = [
        f"watching {event.home}",
        f"  brain:     {event.described}",
        f"  calendars: {names}",
    ]
    if not event.next:
        lines.append("  next:      nothing in the next 7 days")
    for index, item in enumerate(event.next):
        when: datetime = parse_utc_iso(item["at"]).astimezone(zone)
        label = "  next:      " if index == 0 else "             "
        lines.append(
            f"{label}{when:%a %Y-%m-%d %H:%M}  {plain(item.get('title') or item['task'])}"
            f"  ({item.get('calendar')})"
        )
    lines.append("  (Ctrl-C to stop)")
    return "\n".join(lines)
