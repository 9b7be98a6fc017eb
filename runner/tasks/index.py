"""A disposable parse cache for task files, under .runner/cache/.

`runner list` on a home of thousands of occurrence tasks would spend most of its time
in YAML parsing; this keeps each parsed task keyed by (mtime_ns, ctime_ns, size,
inode), so unchanged files are not parsed again. The files stay the truth: a
missing, stale or corrupt cache is simply rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runner.fsutil import atomic_write
from runner.home import Home
from runner.schedule.scheduled import Schedule
from runner.tasks.files import Task, TaskState, parse_task

VERSION = 1


def _index_path(home: Home) -> Path:
    return home.state / "cache" / "tasks.json"


def _signature(stat: os.stat_result) -> list[int]:
    return [stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino]


class TaskIndex:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(_index_path(home).read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == VERSION:
                self.entries = dict(data.get("tasks") or {})

    def load(self, path: Path) -> Task:
        """The parsed task at `path`, from the cache when the file is unchanged.

        Raises what parse_task raises for a broken file (broken files are not cached).
        """
        rel = str(path.relative_to(self.home.tasks))
        self.used.add(rel)
        try:
            signature = _signature(path.stat())
        except OSError:
            return parse_task(self.home, path)  # raises TaskFileError naming the cause
        entry = self.entries.get(rel)
        if entry is not None and entry.get("sig") == signature:
            with contextlib.suppress(TypeError, KeyError):
                fields = dict(entry["task"])
                fields["state"] = TaskState(**fields["state"])
                if fields.get("schedule") is not None:
                    fields["schedule"] = Schedule(**fields["schedule"])
                fields["path"] = path
                return Task(**fields)
        task = parse_task(self.home, path)
        fields = asdict(task)
        fields.pop("path")
        self.entries[rel] = {"sig": signature, "task": fields}
        self.dirty = True
        return task

    def save(self) -> None:
        """Write the cache back if anything changed; forget files no longer seen."""
        stale = set(self.entries) - self.used
        if stale:
            for rel in stale:
                del self.entries[rel]
            self.dirty = True
        if not self.dirty:
            return
        with contextlib.suppress(OSError):
            atomic_write(
                _index_path(self.home),
                json.dumps({"version": VERSION, "tasks": self.entries}, separators=(",", ":")),
            )
        self.dirty = False
