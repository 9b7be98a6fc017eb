"""The last delivery result per target, in `.runner/delivery.json`.

Delivery status is kept apart from run status: a run's record and task file never
change because a message could not be sent. This file is machine-local (a laptop
may reach a target that a desktop cannot), so it lives under .runner/ and may be
deleted at any time. Read-modify-write under a short lock, since a `tick` and a
`watch` (and its workers) may record at once; errors never hold a secret (the
sender redacts them).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from runner.fsutil import atomic_write
from runner.home import Home

HEARTBEAT = "heartbeat"  # the heartbeat's entry, beside the targets


def state_path(home: Home) -> Path:
    return home.state / "delivery.json"


def read_delivery(home: Home) -> dict[str, dict[str, Any]]:
    """Target name → {last_attempt, last_ok, last_error, last_error_at}; {} if none."""
    try:
        doc = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    targets = doc.get("targets") if isinstance(doc, dict) else None
    if not isinstance(targets, dict):
        return {}
    return {str(k): v for k, v in targets.items() if isinstance(v, dict)}


def record_result(home: Home, target: str, ok: bool, error: str | None, at: str) -> None:
    """Best effort: losing this bookkeeping must never fail a run."""
    with contextlib.suppress(OSError):
        home.locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(home.locks / "delivery.lock"), timeout=10):
            targets = read_delivery(home)
            entry = dict(targets.get(target, {}))
            entry["last_attempt"] = at
            if ok:
                entry["last_ok"] = at
                entry["last_error"] = None
            else:
                entry["last_error"] = error
                entry["last_error_at"] = at
            targets[target] = entry
            text = json.dumps({"version": 1, "targets": targets}, ensure_ascii=False, indent=1)
            atomic_write(state_path(home), text + "\n")
