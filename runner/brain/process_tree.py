"""Ending every process a run started, however deep, when the run must stop.

The Claude Code CLI starts children of its own (a shell for a granted command, MCP
servers), and those may start more. Killing the CLI alone would leave them running,
re-parented to init. So each run tags its CLI with an environment variable holding a
fresh id, which every descendant inherits; `kill_tagged` finds them all by that tag,
including ones that already lost their parent, and kills them together.

psutil comes with the `claude-code` extra; it is imported only here, only when needed.
"""

from __future__ import annotations

import atexit
import time
import uuid
from pathlib import Path
from typing import Any

from runner.events import notify

TAG = "RUNNER_CLAUDE_RUN"
OWNER = "RUNNER_CLAUDE_OWNER"  # `pid:start time` of the runner process that started it
HOME = "RUNNER_CLAUDE_HOME"  # the home the run was for: a sweep ends its own home's only


_live: set[str] = set()  # the tags of the runs under way in this process


def new_tag() -> str:
    return uuid.uuid4().hex


def track(tag: str) -> None:
    """A run under way: if the process exits before it ends (`runner watch` shutting
    down abandons a call still waiting on the API), what it started ends too."""
    if not _live:
        atexit.unregister(_end_live)
        atexit.register(_end_live)
    _live.add(tag)


def untrack(tag: str) -> None:
    _live.discard(tag)


def _end_live() -> None:
    for tag in list(_live):
        kill_tagged(tag, wait=2.0)


def owner() -> str:
    """This process as an owner: its pid and start time (a reused pid is another)."""
    import psutil

    me = psutil.Process()
    return f"{me.pid}:{me.create_time():.3f}"


def tags(tag: str, home: Path) -> dict[str, str]:
    """The environment that marks a run's CLI and everything it starts."""
    return {TAG: tag, OWNER: owner(), HOME: str(home.resolve())}


def sweep_orphans(home: Path, tell: bool = False) -> list[int]:
    """Kill tagged processes of this home whose runner is gone (it was SIGKILLed
    mid-run): the CLI and what it started outlive their runner otherwise. Another
    home's are left to that home's next run (two test runs, or two users' homes, on
    one machine must not end each other's). Returns their pids."""
    import psutil

    mine = str(home.resolve())
    orphans: list[psutil.Process] = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if TAG in env and env.get(HOME) == mine and not _owner_alive(env.get(OWNER, "")):
                orphans.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    for proc in orphans:
        try:
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    if orphans and tell:
        msg = f"claude-code: ended {len(orphans)} processes left by a runner that was killed"
        notify(msg, "info")
    return [p.pid for p in orphans]


def _owner_alive(value: str) -> bool:
    import psutil

    pid, _, started = value.partition(":")
    try:
        return f"{psutil.Process(int(pid)).create_time():.3f}" == started
    except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tagged(tag: str) -> list[int]:
    """The pids of the live processes whose environment carries `TAG=tag`."""
    import psutil

    found: list[int] = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TAG) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # gone meanwhile, or another user's: not ours either way
    return found


def kill_tagged(tag: str, wait: float = 5.0) -> list[int]:
    """SIGKILL every process tagged `tag`, wait until each is dead; returns their pids.

    SIGKILL, not SIGTERM: a run that timed out is stuck, and a process that traps
    SIGTERM must not outlive it. Dead means gone or a zombie: the CLI is our own
    child, reaped by its transport (reaping it here would steal its exit code).
    """
    import psutil

    procs: list[psutil.Process] = []
    for pid in tagged(tag):
        try:
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    deadline = time.monotonic() + wait
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p.pid for p in procs]


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
