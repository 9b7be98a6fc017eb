"""One watch loop per home: an exclusive lock under .runner/ and a pid file.

`runner watch` holds `.runner/watch.lock` (flock) for its whole life and writes its pid
to `.runner/watch.pid`. The kernel drops a flock when its holder dies, so a watch that
was killed never blocks the next one, and a pid file left behind by a crash is
ignored: the lock, not the pid file, says whether a watch runs. Kept free of heavy
imports because `runner list` asks it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from runner.errors import LockBusy
from runner.fsutil import atomic_write
from runner.home import Home

# A probe (`runner list`) holds the lock for microseconds; a starting watch that meets
# one retries this long before it concludes another watch runs.
_START_RETRY = 0.5


def lock_path(home: Home) -> Path:
    return home.state / "watch.lock"


def pid_path(home: Home) -> Path:
    return home.state / "watch.pid"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(home: Home) -> int | None:
    try:
        text = pid_path(home).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class WatchLock:
    """The held watch lock; release it (or leave the `with`) when the loop ends."""

    def __init__(self, home: Home, fd: int) -> None:
        self.home = home
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the pid file while still holding the lock, so no reader sees our pid
        # next to a lock that is already free for the next watch.
        if _read_pid(self.home) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                pid_path(self.home).unlink()
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None

    def __enter__(self) -> WatchLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire_watch_lock(home: Home) -> WatchLock:
    """Take the home's watch lock, or raise LockBusy naming the running watch's pid."""
    home.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(home), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + _START_RETRY
    while not _try_flock(fd):
        if time.monotonic() >= deadline:
            os.close(fd)
            pid = _read_pid(home)
            who = f"pid {pid}" if pid is not None else "pid unknown"
            raise LockBusy(f"a watch is already running on {home.root} ({who})")
        time.sleep(0.02)
    try:
        atomic_write(pid_path(home), f"{os.getpid()}\n")
    except BaseException:
        os.close(fd)
        raise
    return WatchLock(home, fd)


def watch_pid(home: Home) -> int | None:
    """The pid of the watch running on `home`, or None when none runs."""
    path = lock_path(home)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _try_flock(fd):
            return None  # nobody holds it: a pid file left by a crash means nothing
        # Held: the pid file is written right after the lock is taken; give it a moment.
        for _ in range(25):
            pid = _read_pid(home)
            if pid is not None:
                return pid
            time.sleep(0.02)
        return 0  # running, pid not known (a pid file deleted by hand)
    finally:
        os.close(fd)  # also drops the probe's own flock, if it took one
