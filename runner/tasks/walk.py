"""Walking tasks/: every task file, and a problem for each folder that cannot be listed."""

from __future__ import annotations

import os
from pathlib import Path

from runner.errors import Problem
from runner.home import Home


def iter_task_paths(home: Home, problems: list[Problem] | None = None) -> list[Path]:
    """Every task file, hand-written first, sorted; hidden and temp files skipped.

    A folder that cannot be listed (no read permission, a symlink loop) is one
    problem naming it, and the rest is still listed. Files are returned even when they
    cannot be read (a dangling or looping symlink): loading them names the cause.
    Only two levels are walked (tasks/<id>.yaml, tasks/<series>/<stamp>.yaml), so a
    symlink to a folder is followed at most once and can never loop.
    """
    found: list[Path] = []

    def scan(folder: Path, depth: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        except OSError as exc:
            if problems is not None:
                problems.append(Problem(str(folder), None, f"cannot list: {exc.strerror}"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.name.endswith(".yaml"):
                found.append(Path(entry.path))
            elif depth == 1 and _is_dir(entry):
                scan(Path(entry.path), 2)

    scan(home.tasks, 1)
    return sorted(found, key=lambda p: (len(p.relative_to(home.tasks).parts), str(p)))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
