"""`runner next`: the upcoming occurrences, like an agenda.

Served from the parse cache under .runner/cache/ when the calendar files are
unchanged (reader.CalendarCache with disk=True), so a warm call imports neither
icalendar nor recurring-ical-events and stays fast on thousands of series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runner.errors import Problem
from runner.home import Home
from runner.schedule.cache import CalendarCache
from runner.schedule.expand import occurrences_between
from runner.schedule.occurrence import Occurrence
from runner.settings import Settings


@dataclass(frozen=True)
class AgendaRow:
    when: datetime  # fire time in the local zone
    title: str
    calendar: str
    series_key: str
    task_id: str
    all_day: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.when.isoformat(),
            "title": self.title,
            "calendar": self.calendar,
            "series_key": self.series_key,
            "task": self.task_id,
            "all_day": self.all_day,
        }


@dataclass(frozen=True)
class Agenda:
    start: datetime
    end: datetime
    rows: tuple[AgendaRow, ...]
    problems: tuple[Problem, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "occurrences": [row.to_json() for row in self.rows],
        }


def upcoming(home: Home, settings: Settings, now: datetime, days: float) -> Agenda:
    cache = CalendarCache(home, disk=True)
    calendars = cache.refresh(settings)
    end = now + timedelta(days=days)
    found: list[Occurrence] = occurrences_between(calendars, now, end)
    problems = tuple(calendars.problems)
    cache.save()
    zone = calendars.zone
    rows = tuple(
        AgendaRow(
            when=o.fire_at.astimezone(zone),
            title=o.title,
            calendar=o.calendar,
            series_key=o.series_key,
            task_id=o.task_id,
            all_day=o.all_day,
        )
        for o in found
    )
    return Agenda(now.astimezone(zone), end.astimezone(zone), rows, problems)
