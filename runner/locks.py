"""Per-series locks under .runner/locks/.

One lock per key serialises everything that reads-modifies-writes a series: its
task files' state blocks, its log, its compression. filelock uses flock(), which the
kernel releases when the holder dies, so a crashed run never leaves a stale lock and
"the task says running but nobody holds its lock" means the run was interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from runner.home import Home
from runner.keys import check_key

__all__ = ["Timeout", "holding_series", "series_lock", "try_series_lock"]


def series_lock(home: Home, key: str) -> FileLock:
    check_key(key)
    home.locks.mkdir(parents=True, exist_ok=True)
    # thread_local=False: the watch loop may acquire in one thread and release in another.
    return FileLock(str(home.locks / f"{key}.lock"), thread_local=False)


def try_series_lock(home: Home, key: str) -> FileLock | None:
    """The lock, acquired, or None when another process or thread holds it."""
    lock = series_lock(home, key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def acquire_waiting(lock: FileLock, key: str, on_wait: Callable[[str], None] | None) -> None:
    """Take `lock`, saying once (through `on_wait`) when another run holds it."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(f"waiting for another run of series {key} to finish")
        lock.acquire()


@contextmanager
def holding_series(
    home: Home, key: str, *, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[bool]:
    """Hold the series lock of `key` for the block: the one way run, compress and the
    series runner take it.

    Waits for another holder (saying so once through `on_wait`); with `wait=False`
    yields False at once, holding nothing, when another process or thread holds it.
    """
    lock = series_lock(home, key)
    if wait:
        acquire_waiting(lock, key, on_wait)
    else:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
    try:
        yield True
    finally:
        lock.release()
