"""Time, injected. The scheduler and executor take a Clock so tests advance it
instead of sleeping; timestamps are formatted in one place so they sort as strings.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (it may stop during suspend)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utc_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: `2026-11-26T08:00:00.000812Z`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where UTC was required")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc_iso(text: str) -> datetime:
    """Inverse of utc_iso; accepts any RFC 3339 offset."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# -- the local zone ------------------------------------------------------------
# The machine's local time zone, as a real zone with DST rules.
#
# Floating times and all-day events fire in local time (SPEC, "Scheduling rules"), so a
# fixed UTC offset is not enough: a floating 09:00 must stay 09:00 across a DST change.
# `TZ` wins (tests set it), then /etc/localtime, then the current fixed offset.


@cache
def local_zone() -> tzinfo:
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        try:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)
