"""Processes of stdio MCP servers that outlive them, found and stopped.

Every process a stdio server starts inherits `RUNNER_MCP_SERVER=<runner pid>.<id>`.
The SDK stops the server process itself, and its process group only when the server
will not exit, so a child the server left running (a wrapper such as npx or uvx, a
helper it spawned) would outlive the run; and a runner killed outright (SIGKILL,
power loss) stops nothing. `stop_leftovers` kills what a stopped server left behind;
`stop_orphans`, called before servers start, kills what a dead runner's servers left.
Linux only (/proc); elsewhere both are no-ops. Only our own user's processes can be
read, so nobody else's is touched.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

MARKER_ENV = "RUNNER_MCP_SERVER"
PROC = Path("/proc")


def new_marker() -> str:
    return f"{os.getpid()}.{uuid.uuid4().hex}"


def stop_leftovers(marker: str) -> int:
    """SIGKILL every process carrying this server's marker; how many there were."""
    return _kill_where(lambda found: found == marker)


def stop_orphans() -> int:
    """SIGKILL every marked process whose runner is gone; how many there were."""
    return _kill_where(lambda found: not _alive(found.partition(".")[0]))


def _kill_where(wanted: Callable[[str], bool]) -> int:
    killed = 0
    for pid, marker in marked():
        if wanted(marker):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:  # gone meanwhile
                continue
    return killed


def marked() -> Iterator[tuple[int, str]]:
    """(pid, marker) of each readable process that carries a marker."""
    prefix = f"{MARKER_ENV}=".encode()
    try:
        entries = [p for p in PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return
    for entry in entries:
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        if prefix not in environ:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                yield int(entry.name), item[len(prefix) :].decode("ascii", "replace")
                break


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
