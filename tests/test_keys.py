from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from runner import keys
from runner.errors import UsageError


def test_series_key_shape_follows_spec() -> None:
    uid = "0b3c9f2e-41d7@example.com"
    digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
    assert keys.series_key(uid) == f"0b3c9f2e-41d7example.com-{digest}"


@pytest.mark.parametrize(
    "uid",
    ["../../x", "a/b", "x\x00y", "u" * 300, "ünïcödé-事件", "...", "/etc/passwd", "", "A B C"],
)
def test_hostile_uids_give_valid_keys(uid: str) -> None:
    key = keys.series_key(uid)
    assert keys.is_valid_key(key)
    assert "/" not in key and "\x00" not in key and not key.startswith(".")
    readable = key.rsplit("-", 1)[0]
    assert len(readable) <= 24


def test_series_key_keeps_different_uids_apart() -> None:
    assert keys.series_key("a/b") != keys.series_key("ab")
    assert keys.series_key("") == keys.series_key("").lower()
    assert keys.series_key("!!!").startswith("event-")


def test_session_id_is_stable_and_per_key() -> None:
    assert keys.session_id("daily") == keys.session_id("daily")
    assert keys.session_id("daily") != keys.session_id("weekly")
    # Pinned: the same on every machine, forever.
    assert keys.session_id("daily") == "92ec3b6c-0337-5c3f-9010-db371dde2b4a"


def test_stamps() -> None:
    berlin = datetime(2026, 11, 26, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert keys.stamp(berlin) == "20261126T080000Z"
    assert keys.stamp(datetime(2026, 11, 26, 9, 0)) == "20261126T090000"
    assert keys.stamp(date(2026, 11, 26)) == "20261126"
    assert keys.stamp(datetime(2026, 11, 26, 8, 0, tzinfo=UTC)) == "20261126T080000Z"


@pytest.mark.parametrize("bad", ["", "archive", "-x", "a/b", "a" * 101, "../x", "ä"])
def test_invalid_keys_rejected(bad: str) -> None:
    assert not keys.is_valid_key(bad)
    with pytest.raises(UsageError):
        keys.check_key(bad)
