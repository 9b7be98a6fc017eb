"""The machine's local time zone, as a real zone with DST rules.

Floating times and all-day events fire in local time (SPEC, "Scheduling rules"), so a
fixed UTC offset is not enough: a floating 09:00 must stay 09:00 across a DST change.
`TZ` wins (tests set it), then /etc/localtime, then the current fixed offset.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
