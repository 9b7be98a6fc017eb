"""Notifications decided but not sent yet, kept on disk so a crash cannot drop them.

A notification is decided under the series lock and sent after the lock is released
(a slow target must never hold up the series). In between it is one JSON file in
`.runner/outbox/`, written atomically before the decision can be forgotten. A sender
claims an entry by renaming it to carry its pid (of several processes only one rename
wins), sends, then deletes it. An entry left by a process that died — never claimed,
or claimed by a pid that is gone — is sent by the next `tick`, `watch` or `run`.

So a notification is sent at least once, and twice only when its sender dies between
the send and the delete. A damaged entry is dropped with a warning, never a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.deliver.message import Report
from runner.fsutil import atomic_write
from runner.home import Home
from runner.tasks.delivery import Delivery

_NAME = re.compile(r"[0-9a-z-]{1,80}")
_CLAIMED = re.compile(r"(?P<name>[0-9a-z-]{1,80})\.json\.(?P<pid>\d{1,10})\.sending")


@dataclass(frozen=True)
class Entry:
    """One claimed notification: the report, who it goes to, and the file to delete."""

    path: Path
    report: Report
    delivery: Delivery


def outbox(home: Home) -> Path:
    return home.state / "outbox"


def put(home: Home, name: str, report: Report, delivery: Delivery) -> str:
    """Keep `report` until it is sent; `name` (an execution id) makes a retry idempotent."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad outbox name {name!r}")
    body = {
        "version": 1,
        "report": dataclasses.asdict(report),
        "delivery": {
            "notify": list(delivery.notify) if delivery.notify is not None else None,
            "notify_on": list(delivery.notify_on),
        },
    }
    atomic_write(outbox(home) / f"{name}.json", json.dumps(body, ensure_ascii=False))
    return name


def claim(home: Home, name: str) -> Path | None:
    """Take the entry `name` for this process, or None when it is gone (sent by another)."""
    return _rename(outbox(home) / f"{name}.json")


def leftovers(home: Home) -> list[str]:
    """Entries nobody is sending: never claimed, or claimed by a process that is gone.

    An unclaimed entry may belong to a live run that has not sent it yet; taking it
    is harmless, since only one rename of it succeeds.
    """
    try:
        names = sorted(os.listdir(outbox(home)))
    except FileNotFoundError:
        return []
    found: list[str] = []
    for name in names:
        if name.endswith(".json") and _NAME.fullmatch(name[:-5]):
            found.append(name[:-5])
            continue
        claimed = _CLAIMED.fullmatch(name)
        if (
            claimed is not None
            and not _alive(int(claimed["pid"]))
            and _rename(outbox(home) / name, to=outbox(home) / f"{claimed['name']}.json")
        ):
            found.append(claimed["name"])
    return found


def load(path: Path) -> Entry | None:
    """A claimed entry, or None (and the file removed) when it cannot be read back."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        report = Report(**_fields(body["report"], Report))
        raw = body["delivery"]
        notify = raw["notify"]
        delivery = Delivery(
            notify=tuple(str(n) for n in notify) if notify is not None else None,
            notify_on=tuple(str(s) for s in raw["notify_on"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        done(path)
        return None
    return Entry(path, report, delivery)


def done(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fields(raw: Any, cls: type) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


def _rename(path: Path, to: Path | None = None) -> Path | None:
    target = to or path.with_name(f"{path.name}.{os.getpid()}.sending")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OverflowError:
        return False
    return True
