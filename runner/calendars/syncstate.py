"""The sync state of one CalDAV calendar: `.runner/sync/<name>.json`.

The token and, per href, the etag and the file it was written to, plus how many
token syncs ran since the last full listing. It is a cache: when it is missing,
corrupt or for another URL, the next sync compares everything again and the result
is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runner.calendars.vdir import EXTENSION
from runner.fsutil import atomic_write
from runner.home import Home

STATE_VERSION = 1


@dataclass
class State:
    url: str
    mode: str | None = None
    token: str | None = None
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (etag, file)
    checks: int = 0  # token syncs since the last full listing (VERIFY_EVERY)
    # The url was seen to be a calendar (it held items, or discovery said so). A state
    # written before that was asked lacks it, so a calendar home that once synced as
    # "0 added" is asked about once more.
    calendar: bool = False


def state_path(home: Home, name: str) -> Path:
    return home.state / "sync" / f"{name}.json"


def load_state(path: Path, url: str) -> State | None:
    """The saved state, or None (full sync) when missing, corrupt or for another url."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION or raw.get("url") != url:
            return None
        items: dict[str, tuple[str, str]] = {}
        for key, (etag, name) in raw["items"].items():
            if not all(isinstance(v, str) for v in (key, etag, name)):
                return None
            if not name.endswith(EXTENSION) or "/" in name or name.startswith("."):
                return None
            items[key] = (etag, name)
        token, mode, checks = raw.get("token"), raw.get("mode"), raw.get("checks", 0)
        if not isinstance(token, str | None) or mode not in ("sync-token", "etag"):
            return None
        calendar = raw.get("calendar", False)
        if type(checks) is not int or checks < 0 or not isinstance(calendar, bool):
            return None
        return State(url, mode, token, items, checks, calendar)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def save_state(path: Path, state: State) -> None:
    document = {
        "version": STATE_VERSION,
        "url": state.url,
        "mode": state.mode,
        "token": state.token,
        "items": {k: list(v) for k, v in sorted(state.items.items())},
        "checks": state.checks,
        "calendar": state.calendar,
    }
    atomic_write(path, json.dumps(document, ensure_ascii=False) + "\n")
