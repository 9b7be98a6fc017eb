"""Keys and identities (SPEC, "Keys and identities").

A key names a log and a series. Series keys are derived from the event UID alone,
so remote data never becomes a path: only `[a-z0-9._-]` survive, and a hash of the
whole UID keeps different UIDs apart.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime

from runner.errors import UsageError

KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RESERVED = frozenset({"archive"})

# Fixed namespace: session ids must be the same on every machine, forever.
SESSION_NAMESPACE = uuid.UUID("6b1f3c2e-9a4d-5e8f-b7c0-2d4e6f8a0b1c")

_READABLE_DROP = re.compile(r"[^a-z0-9._-]")
_LEADING = re.compile(r"^[^a-z0-9]+")


def is_valid_key(key: str) -> bool:
    return bool(KEY_RE.fullmatch(key)) and key not in RESERVED


def check_key(key: str) -> str:
    if not is_valid_key(key):
        raise UsageError(
            f"invalid key {key!r}: a key is 1-100 characters of [A-Za-z0-9._-], "
            "starting with a letter or digit, and not 'archive'"
        )
    return key


def series_key(uid: str) -> str:
    """`<readable part>-<8 hex of sha256(UID)>`; safe for any UID."""
    readable = _LEADING.sub("", _READABLE_DROP.sub("", uid.lower()))[:24] or "event"
    digest = hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"


def session_id(key: str) -> str:
    return str(uuid.uuid5(SESSION_NAMESPACE, key))


def stamp(original_start: date | datetime) -> str:
    """An occurrence's stamp: UTC basic form, a date for all-day, no Z for floating."""
    if isinstance(original_start, datetime):
        if original_start.tzinfo is None:
            return original_start.strftime("%Y%m%dT%H%M%S")
        return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original_start.strftime("%Y%m%d")
