"""How the watch loop's events look: lines on stderr, or JSON lines on stdout."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from runner.cli.render import emit_json_line, notice, tokens_text
from runner.clock import Clock, local_zone, parse_utc_iso, utc_iso


class WatchView:
    """Renders the loop's events: lines on stderr, or JSON lines on stdout.

    Called from the loop, the workers and the sync thread, hence the lock.
    """

    def __init__(self, clock: Clock, as_json: bool) -> None:
        self.clock = clock
        self.as_json = as_json
        self._lock = threading.Lock()
        # Human output folds a series' skipped occurrences into one line: after a
        # night away a minutely event would otherwise print hundreds.
        self._skipped: dict[str, list[str]] = {}

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            if self.as_json:
                emit_json_line({"event": kind, "time": utc_iso(self.clock.now()), **data})
                return
            if kind == "skipped":
                self._skipped.setdefault(str(data.get("key")), []).append(str(data.get("task")))
                return
            if kind == "fired":
                self._flush(str(data.get("key")))
            line = self.human(kind, data)
            if line is not None:
                notice(line)

    def end_of_series(self, key: str) -> None:
        with self._lock:
            self._flush(key)

    def _flush(self, key: str) -> None:
        skipped = self._skipped.pop(key, [])
        if len(skipped) == 1:
            notice(f"{self._at()} skipped  {skipped[0]} (missed; catch_up)")
        elif skipped:
            notice(f"{self._at()} skipped  {len(skipped)} missed occurrences of {key} (catch_up)")

    def _at(self) -> str:
        return self.clock.now().astimezone(local_zone()).strftime("%H:%M:%S")

    def human(self, kind: str, data: dict[str, Any]) -> str | None:
        if kind == "started":
            return self.banner(data)
        at = self._at()
        task = data.get("task", "")
        if kind == "fired":
            return f"{at} fired    {task}  {data.get('title', '')}".rstrip()
        if kind == "finished":
            seconds = data.get("seconds")
            took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
            usage = data.get("usage")
            tokens = f", tokens {tokens_text(usage)}" if isinstance(usage, dict) else ""
            error = f": {data['error']}" if data.get("error") else ""
            return f"{at} finished {task}  {data.get('status', '')}{took}{tokens}{error}"
        if kind == "cancelled":
            return f"{at} cancelled {task} (its event was deleted)"
        if kind == "problem":
            return f"warning: {data.get('message', '')}"
        if kind == "notice":
            return f"{at} warning: {data.get('message', '')}"
        if kind == "error":
            where = f"{data['calendar']}: " if data.get("calendar") else ""
            return f"{at} warning: {where}{data.get('message', '')}"
        if kind == "sync":
            if data.get("recovered"):
                return f"{at} sync ok again: {', '.join(data['recovered'])}"
            return None  # routine syncs are quiet
        if kind == "clock":
            skew = float(data.get("skew", 0))
            return f"{at} clock moved {skew:+.0f} s ({data.get('reason')}): catching up"
        if kind == "stopped":
            stuck = data.get("interrupted") or []
            if stuck:
                return f"{at} stopped; interrupted (will retry): {', '.join(stuck)}"
            return f"{at} stopped"
        return None

    def banner(self, data: dict[str, Any]) -> str:
        zone = local_zone()
        brain = str(data.get("described") or data.get("brain"))
        names = ", ".join(data.get("calendars") or []) or "(none: add calendars/<name>/*.ics)"
        lines = [
            f"watching {data.get('home')}",
            f"  brain:     {brain}",
            f"  calendars: {names}",
        ]
        upcoming = data.get("next") or []
        if not upcoming:
            lines.append("  next:      nothing in the next 7 days")
        for index, item in enumerate(upcoming):
            when: datetime = parse_utc_iso(item["at"]).astimezone(zone)
            label = "  next:      " if index == 0 else "             "
            lines.append(
                f"{label}{when:%a %Y-%m-%d %H:%M}  {item.get('title') or item['task']}"
                f"  ({item.get('calendar')})"
            )
        lines.append("  (Ctrl-C to stop)")
        return "\n".join(lines)
