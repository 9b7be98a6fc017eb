"""The step journal of a run in progress: `.runner/runs/<execution id>.jsonl`.

Each finished tool call is appended as one whole line (O_APPEND, fsync) the moment
it returns, before the model hears its result. If the process dies mid-loop, the
recovery of its task reads the journal into the `interrupted` record, so what the
agent already did (a file written, a server called) is never lost, and the retry's
context says it was done. Once the run's record is in the log the journal is removed.

The execution id is derived from the task id, the run's start time and its attempt
number (uuid5), so recovery finds the journal from the task file's state alone.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

from runner.events import notify
from runner.fsutil import append_line
from runner.home import Home
from runner.tools.steps import Step

_NAMESPACE = uuid.UUID("6f1d3c2e-8a41-4b7e-9c55-2d7e0b1a9f30")


def execution_id(task_id: str, started: str, attempt: int) -> str:
    """The id of a run: the same for the run and for its recovery, unique per attempt."""
    return uuid.uuid5(_NAMESPACE, f"{task_id}\n{started}\n{attempt}").hex


def journal_path(home: Home, exec_id: str) -> Path:
    return home.state / "runs" / f"{exec_id}.jsonl"


def append_step(home: Home, exec_id: str, step: Step) -> None:
    line = json.dumps(step.to_json(), ensure_ascii=False, separators=(",", ":"))
    append_line(journal_path(home, exec_id), line)


def read_steps(home: Home, exec_id: str) -> list[Step]:
    """The steps a journal holds; a torn last line (a crash mid-append) is dropped."""
    path = journal_path(home, exec_id)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    steps: list[Step] = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if not line.endswith("\n"):
            break  # torn: the crash came mid-write
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            notify(f"{path}:{number}: not a step; skipped")
            continue
        if isinstance(data, dict):
            steps.append(Step.from_json(data))
    return steps


def remove_journal(home: Home, exec_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(home, exec_id).unlink()
