"""Notifications decided but not sent yet, kept on disk so a crash cannot drop them.

A notification is decided under the series lock and sent after the lock is released
(a slow target must never hold up the series). In between it is one JSON file in
`.runner/outbox/`, written atomically before the decision can be forgotten. A sender
claims an entry by renaming it to carry its pid (of several processes only one rename
wins), sends, then deletes it. An entry left by a process that died — never claimed,
or claimed by a pid that is gone — is sent by the next `tick`, `watch` or `run`.

So a notification is sent at least once, and twice only when its sender dies between
the send and the delete (or a target took it but did not answer in time). A send
that fails is kept for another try, to the targets that failed only, after 1 min,
5 min, 30 min and 2 h: at most MAX_SENDS sends, then given up with a warning. A
clock set back by more than the longest wait does not strand it. A damaged entry is
dropped with a warning, never a crash. A sent (or given up) entry leaves a mark in
`.runner/sent/` for a week, so that recovery deciding it again (a run that died
after keeping it, while another process sent it) does not send it twice.
A claim names its claimant by pid and start time (Linux: /proc), so a pid that a
new process took after a crash does not pass for the dead claimant. Only regular
files are entries: a folder, FIFO or symlink put here is left alone, never opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runner.clock import parse_utc_iso, utc_iso
from runner.deliver.message import Report
from runner.fsutil import atomic_write
from runner.home import Home
from runner.tasks.delivery import Delivery

_NAME = re.compile(r"[0-9a-z-]{1,80}")
_CLAIMED = re.compile(
    r"(?P<name>[0-9a-z-]{1,80})\.json\.(?P<pid>\d{1,10})(?:\.(?P<start>\d{1,20}))?\.sending"
)
MAX_ENTRY = 1024 * 1024  # bytes; a report keeps only the start of a long answer
MAX_TEXT = 8000  # characters of the answer kept (a message shows its first 300)
MAX_SENDS = 5  # tries of one notification to a target that keeps failing
RETRY_AFTER = (60.0, 300.0, 1800.0, 7200.0)  # seconds after the 1st, 2nd, ... failure
KEEP_SENT = 7 * 24 * 3600.0  # seconds a sent entry's mark is kept
STALE_TEMP = 3600.0  # seconds after which a temp file is a write a crash cut off


@dataclass(frozen=True)
class Entry:
    """One claimed notification: the report, who it goes to, and the file to delete."""

    path: Path
    report: Report
    delivery: Delivery
    key: str | None = None  # the series, for an entry whose sending waited (`due`)
    sends: int = 0  # sends tried before this one


@dataclass(frozen=True)
class Unkept:
    """A notification the outbox could not keep (a full disk): sent from memory."""

    report: Report
    delivery: Delivery


def outbox(home: Home) -> Path:
    return home.state / "outbox"


def sent_marks(home: Home) -> Path:
    return home.state / "sent"


def put(
    home: Home,
    name: str,
    report: Report,
    delivery: Delivery,
    *,
    due: str | None = None,
    key: str | None = None,
) -> str:
    """Keep `report` until it is sent (not before `due`, an RFC 3339 UTC time);
    `name` (an execution id) makes a retry idempotent."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad outbox name {name!r}")
    if due is None and _known(home, name):
        return name  # kept, being sent or sent already: once is enough
    text = report.text if report.text is None else report.text[:MAX_TEXT]
    report = replace(report, title=report.title[:1000], text=text)
    body = _body(report, delivery, sends=0, next_try=None, due=due, key=key)
    atomic_write(outbox(home) / f"{name}.json", body)
    return name


def again(entry: Entry, failed: tuple[str, ...], now: datetime) -> bool:
    """Keep a claimed entry for another try to the targets in `failed`, and release
    it; False (and the entry removed) when its tries are used up."""
    sends = entry.sends + 1
    if sends >= MAX_SENDS:
        sent(entry.path)
        return False
    next_try = utc_iso(now + timedelta(seconds=RETRY_AFTER[sends - 1]))
    narrowed = replace(entry.delivery, notify=failed)
    body = _body(entry.report, narrowed, sends=sends, next_try=next_try, due=None, key=entry.key)
    # Rewritten under its claimed name first: a crash in between leaves a claim by a
    # dead process, taken back whole by the next sender.
    atomic_write(entry.path, body)
    name = entry.path.name.partition(".json.")[0]
    os.rename(entry.path, entry.path.with_name(f"{name}.json"))
    return True


def _body(
    report: Report,
    delivery: Delivery,
    *,
    sends: int,
    next_try: str | None,
    due: str | None,
    key: str | None,
) -> str:
    body = {
        "version": 1,
        "due": due,
        "key": key,
        "report": dataclasses.asdict(report),
        "delivery": {
            "notify": list(delivery.notify) if delivery.notify is not None else None,
            "notify_on": list(delivery.notify_on),
        },
        "sends": sends,
        "next_try": next_try,
    }
    return json.dumps(body, ensure_ascii=False)


def claim(home: Home, name: str) -> Path | None:
    """Take the entry `name` for this process, or None when it is gone (sent by another)."""
    return _rename(outbox(home) / f"{name}.json")


def forget(home: Home, name: str) -> None:
    """Drop an unclaimed entry that is no longer true (a waiting failure was retried)."""
    done(outbox(home) / f"{name}.json")


def leftovers(home: Home, now: datetime) -> list[str]:
    """Entries nobody is sending, due by `now`: never claimed (one that failed to
    send, once its next try has come), or claimed by a process that is gone.

    An unclaimed entry may belong to a live run that has not sent it yet; taking it
    is harmless, since only one rename of it succeeds.
    """
    try:
        names = sorted(os.listdir(outbox(home)))
    except FileNotFoundError:
        return []
    found: list[str] = []
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            _clear_if_stale(outbox(home) / name)  # atomic_write's, its process killed
            continue
        if name.endswith(".json") and _NAME.fullmatch(name[:-5]):
            path = outbox(home) / name
            if _regular(path) and _ready(path, now):
                found.append(name[:-5])
            continue
        claimed = _CLAIMED.fullmatch(name)
        if (
            claimed is not None
            and _regular(outbox(home) / name)
            and not _alive(int(claimed["pid"]), claimed["start"])
            and _rename(outbox(home) / name, to=outbox(home) / f"{claimed['name']}.json")
        ):
            found.append(claimed["name"])
    return found


def load(path: Path, warn: Callable[[str], None]) -> Entry | None:
    """A claimed entry, or None (and the file removed, with a warning) when it cannot
    be read back. Opened without following a symlink or waiting on a FIFO."""
    try:
        body = json.loads(_read(path))
        report = _report(body["report"])
        key = body.get("key")
        raw = body["delivery"]
        notify = raw["notify"]
        delivery = Delivery(
            notify=_names(notify, "notify") if notify is not None else None,
            notify_on=_names(raw["notify_on"], "notify_on"),
        )
        sends = body.get("sends", 0)
        if not isinstance(sends, int) or isinstance(sends, bool):
            raise TypeError("'sends' is not a number")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warn(f"{path}: not a notification the runner can send, dropped: {why}"[:300])
        with contextlib.suppress(OSError):  # a folder put here by someone: left alone
            path.unlink()
        return None
    return Entry(path, report, delivery, key if isinstance(key, str) else None, sends)


def done(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # gone, or no outbox
        path.unlink()


def sent(path: Path) -> None:
    """A claimed entry that was sent: moved to `.runner/sent/` as its mark (removed
    when that cannot be done; the mark only guards against a second decision)."""
    mark = path.parent.parent / "sent" / path.name.partition(".json")[0]
    try:
        mark.parent.mkdir(exist_ok=True)
        os.rename(path, mark)
        os.utime(mark)  # kept a week from now, not from when it was decided
    except OSError:
        done(path)
    _forget_old_marks(mark.parent)  # here, not on every look at the outbox: it is cheap


def _known(home: Home, name: str) -> bool:
    """Whether `name` is kept, being sent, or was sent (its mark)."""
    if os.path.lexists(sent_marks(home) / name):
        return True
    try:
        here = os.listdir(outbox(home))
    except FileNotFoundError:
        return False
    return any(n == f"{name}.json" or n.startswith(f"{name}.json.") for n in here)


def _clear_if_stale(path: Path) -> None:
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_mtime < time.time() - STALE_TEMP:
            os.unlink(path)


def _forget_old_marks(folder: Path) -> None:
    """Marks older than KEEP_SENT go (by their time: a clock set back keeps them longer)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    oldest = time.time() - KEEP_SENT
    for name in names:
        with contextlib.suppress(OSError):
            path = folder / name
            if os.lstat(path).st_mtime < oldest:
                os.unlink(path)


def claimant() -> str:
    """This process, as a claim names it: pid, and start time where it is known."""
    start = _start_time(os.getpid())
    return f"{os.getpid()}" if start is None else f"{os.getpid()}.{start}"


def _read(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_ENTRY:
            raise ValueError(f"{info.st_size} bytes, more than an entry ever holds")
        return handle.read(MAX_ENTRY + 1).decode("utf-8")


def _ready(path: Path, now: datetime) -> bool:
    """Whether a kept entry may be sent now (one read of it):
    - a failure kept until its retry's last chance (`due`, RFC 3339 UTC strings of one
      format compare as times) waits until then;
    - one whose send failed waits for its `next_try`, unless that is further off than
      the longest wait, which means the clock was set back since.
    An unreadable entry is ready: load drops it, saying why."""
    try:
        body = json.loads(_read(path))
        due, next_try = body.get("due"), body.get("next_try")
        if isinstance(due, str) and due > utc_iso(now):
            return False
        if next_try is None:
            return True
        wait = parse_utc_iso(next_try) - now
    except (OSError, ValueError, AttributeError, TypeError):
        return True
    return wait <= timedelta(0) or wait > timedelta(seconds=max(RETRY_AFTER))


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


_TEXT_OR_NONE = (str, type(None))
_REPORT_TYPES: dict[str, type | tuple[type, ...]] = {
    "task_id": str,
    "title": str,
    "status": str,
    "when": _TEXT_OR_NONE,
    "text": _TEXT_OR_NONE,
    "output": _TEXT_OR_NONE,
    "attempts": int,
}


def _report(raw: Any) -> Report:
    """The report of an entry, every field of its own type (the file may be anyone's)."""
    fields = _fields(raw, Report)
    for name, value in fields.items():
        if not isinstance(value, _REPORT_TYPES[name]) or isinstance(value, bool):
            raise TypeError(f"report.{name} is not of its type")
    return Report(**fields)


def _names(raw: Any, what: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise TypeError(f"delivery.{what} is not a list of names")
    return tuple(raw)


def _fields(raw: Any, cls: type) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


def _rename(path: Path, to: Path | None = None) -> Path | None:
    target = to or path.with_name(f"{path.name}.{claimant()}.sending")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def _alive(pid: int, start: str | None) -> bool:
    """Whether the claimant lives: its pid, and (when the claim says) its start time."""
    if pid == os.getpid():
        return start is None or start == str(_start_time(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's live process
    except OverflowError:
        return False
    now = _start_time(pid) if start is not None else None
    return now is None or str(now) == start  # a later process with the same pid: gone


def _start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
        # Field 22; the name (field 2) is in parentheses and may hold anything.
        return int(raw[raw.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None
