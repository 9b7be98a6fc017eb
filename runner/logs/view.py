"""`runner log`: resolve a key or task id and read its log (optionally with archive)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner import keys
from runner.errors import UsageError
from runner.home import Home
from runner.logs import store as logs
from runner.tasks import files as tasks


@dataclass(frozen=True)
class LogView:
    key: str
    contents: logs.LogContents

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "summary": self.contents.summary.to_json() if self.contents.summary else None,
            "executions": [r.to_json() for r in self.contents.executions],
        }


def resolve_key(home: Home, key_or_task: str) -> str:
    """A task id resolves to its key; otherwise the argument must be an existing key."""
    if tasks.TASK_ID_RE.fullmatch(key_or_task) and tasks.task_path(home, key_or_task).exists():
        return tasks.load_task(home, key_or_task).key
    if keys.is_valid_key(key_or_task) and (
        logs.log_path(home, key_or_task).exists() or logs.archive_path(home, key_or_task).exists()
    ):
        return key_or_task
    raise UsageError(f"no task or log named {key_or_task!r}")


def view_log(home: Home, key_or_task: str, include_archive: bool) -> LogView:
    key = resolve_key(home, key_or_task)
    contents = logs.read_all(home, key) if include_archive else logs.read_log(home, key)
    return LogView(key, contents)
