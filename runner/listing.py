"""`runner list`: every task with its status, occurrence, last run and token totals.

A task that says `running` while nobody holds its series lock is recovered here too
(SPEC: "the next command that touches it"). Broken files are reported, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.clock import Clock
from runner.deliver.state import read_delivery
from runner.errors import FileError, Problem, RunnerError
from runner.home import Home
from runner.logs import store as logs
from runner.run.budget import DaySpend, day_spend
from runner.run.recovery import recover_if_interrupted
from runner.settings import Settings
from runner.tasks.files import parse_task
from runner.tasks.index import TaskIndex
from runner.tasks.walk import iter_task_paths
from runner.watch.lock import watch_pid


@dataclass(frozen=True)
class TaskRow:
    id: str
    key: str
    title: str
    status: str
    occurrence: str | None
    attempts: int
    last_run: str | None
    error: str | None
    tokens: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "occurrence": self.occurrence,
            "attempts": self.attempts,
            "last_run": self.last_run,
            "error": self.error,
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class ListResult:
    rows: tuple[TaskRow, ...]
    problems: tuple[Problem, ...]
    watch_pid: int | None = None
    # Target name → its last delivery result (machine-local, from .runner/).
    delivery: dict[str, dict[str, Any]] = field(default_factory=dict)
    spend: DaySpend | None = None  # today's tokens against brain.daily_tokens


def list_tasks(home: Home, clock: Clock, settings: Settings | None = None) -> ListResult:
    rows: list[TaskRow] = []
    problems: list[Problem] = []
    totals: dict[str, dict[str, int]] = {}
    index = TaskIndex(home)
    for path in iter_task_paths(home, problems):
        try:
            task = index.load(path)
        except RunnerError as exc:
            problems.append(Problem.of(path, exc))
            continue
        # A log that cannot be read (a bad line in the middle) is its own problem: the
        # task still gets its row, with no token totals, and the log is named once.
        try:
            recovered = recover_if_interrupted(home, task, clock)
            if recovered is not None:
                task = parse_task(home, path)
            if task.key not in totals:
                totals[task.key] = logs.read_log(home, task.key).usage_totals()
        except FileError as exc:
            if task.key not in totals:
                problems.append(Problem.from_error(exc))
            totals[task.key] = dict.fromkeys(logs.USAGE_KEYS, 0)
        rows.append(
            TaskRow(
                id=task.id,
                key=task.key,
                title=task.title,
                status=task.state.status,
                occurrence=task.occurrence,
                attempts=task.state.attempts,
                last_run=task.state.finished or task.state.started,
                error=task.state.error,
                tokens=totals[task.key],
            )
        )
    index.save()
    spend = day_spend(home, settings or Settings(), clock)
    return ListResult(tuple(rows), tuple(problems), watch_pid(home), read_delivery(home), spend)
