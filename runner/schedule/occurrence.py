"""An occurrence: one moment a calendar event (or a scheduled task) fires.

Its identity is (UID, original start = RECURRENCE-ID): the stamp comes from the
original start, so a moved occurrence keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Occurrence:
    uid: str
    calendar: str
    series_key: str
    stamp: str
    original_start: date | datetime
    start: date | datetime  # actual start in the event's own zone; a date for all-day
    fire_at: datetime  # aware UTC
    title: str
    description: str
    source: str  # caldav | local
    path: Path  # the .ics it came from

    @property
    def task_id(self) -> str:
        return f"{self.series_key}/{self.stamp}"

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    def sort_key(self) -> tuple[datetime, str, str]:
        return (self.fire_at, self.series_key, self.stamp)


def fire_time(start: date | datetime, all_day_at: time, zone: tzinfo) -> datetime:
    """When an occurrence starting at `start` fires, in UTC."""
    if not isinstance(start, datetime):
        return datetime.combine(start, all_day_at, tzinfo=zone).astimezone(UTC)
    if start.tzinfo is None:
        return start.replace(tzinfo=zone).astimezone(UTC)
    return start.astimezone(UTC)
