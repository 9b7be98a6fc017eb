"""The disk form of an expansion, for the cache under .runner/cache/ (cache.py).

Compact rows (fire time, event index, stamp, original and actual start with their zone
key, so a ZoneInfo comes back, not just an offset) that can be filtered before they
are decoded: a warm `runner next` decodes only the window it shows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.schedule.occurrence import Occurrence


@dataclass
class Expansion:
    all_day_at: str
    start: datetime
    end: datetime
    occurrences: list[Occurrence]

    def covers(self, at: str, start: datetime, end: datetime) -> bool:
        return self.all_day_at == at and self.start <= start and end <= self.end


def time_text(value: date | datetime) -> list[str]:
    """[iso text, zone key]: the zone key restores a ZoneInfo, not just an offset."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return [value.isoformat(), str(getattr(value.tzinfo, "key", "") or "")]
    return [value.isoformat(), ""]


def time_value(text: str, zone_key: str) -> date | datetime:
    if len(text) == 10:
        return date.fromisoformat(text)
    value = datetime.fromisoformat(text)
    if zone_key:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            value = value.astimezone(ZoneInfo(zone_key))
    return value


def encode_expansion(expansion: Any) -> Any:
    """JSON for the disk cache; a still-encoded entry passes through unchanged."""
    if not isinstance(expansion, Expansion):
        return expansion
    events: dict[tuple[str, str, str, str], int] = {}
    rows: list[list[Any]] = []
    for o in expansion.occurrences:
        index = events.setdefault((o.uid, o.title, o.description, o.series_key), len(events))
        rows.append(
            [
                o.fire_at.timestamp(),
                index,
                o.stamp,
                *time_text(o.original_start),
                *time_text(o.start),
            ]
        )
    return {
        "at": expansion.all_day_at,
        "start": expansion.start.timestamp(),
        "end": expansion.end.timestamp(),
        "events": [list(e) for e in events],
        "rows": rows,
    }
