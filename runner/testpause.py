"""Pause points for crash tests, and injected I/O errors for fault tests.

Tests set RUNNER_TEST_PAUSE=<name> and SIGKILL the process once it prints
`PAUSED <name>` on stderr, to prove a crash at that exact step loses nothing.
RUNNER_TEST_FAIL_WRITE=<n> makes the n-th durable write of the process fail with
EIO half-way through (it prints `INJECTED <n> <what>`), to prove an I/O error at
that write leaves nothing half-written. Unset (always, outside tests), each costs
one dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time

_writes = 0
_writes_lock = threading.Lock()


def pause_point(name: str) -> None:
    if os.environ.get("RUNNER_TEST_PAUSE") != name:
        return
    sys.stderr.write(f"PAUSED {name}\n")
    sys.stderr.flush()
    time.sleep(3600)


def write_fault(what: str) -> OSError | None:
    """The injected error for this durable write, or None (the usual case)."""
    wanted = os.environ.get("RUNNER_TEST_FAIL_WRITE")
    if wanted is None:
        return None
    global _writes
    with _writes_lock:
        _writes += 1
        count = _writes
    if str(count) != wanted:
        return None
    sys.stderr.write(f"INJECTED {count} {what}\n")
    sys.stderr.flush()
    return OSError(errno.EIO, "Input/output error (injected)", what)
