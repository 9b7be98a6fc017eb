"""An occurrence becomes a task file: find-or-create at a computed path.

The path comes from the series key and the stamp (keys.py makes any UID a safe path
component), never from a search. The file's user part is the event's text, or the
hand-written task an event points at with a first line `task: <id>` (so the words
live in git and the timing in the calendar).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner import keys
from runner.clock import Clock, utc_iso
from runner.errors import RunnerError
from runner.fsutil import atomic_write
from runner.home import Home
from runner.schedule.occurrence import Occurrence
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus

_TASK_REF = re.compile(r"\Atask:[ \t]*(\S+)[ \t]*(?:\r?\n|\Z)")


def find_or_create(
    home: Home, occurrence: Occurrence, clock: Clock, status: TaskStatus = TaskStatus.PENDING
) -> tasks.Task:
    """The task of `occurrence`: its file if it exists, else a new one (under the lock)."""
    path = occurrence_path(home, occurrence)
    if path.exists():
        return tasks.parse_task(home, path)
    fields = task_fields(home, occurrence)
    state = tasks.TaskState(
        status=status,
        session_id=keys.session_id(occurrence.series_key),
        created=utc_iso(clock.now()),
    )
    atomic_write(path, tasks.new_task_text(fields, state))
    return tasks.parse_task(home, path)


def task_reference(description: str) -> str | None:
    """The `<id>` of a DESCRIPTION whose first line is `task: <id>`, else None."""
    match = _TASK_REF.match(description.lstrip("\ufeff"))
    return match[1] if match else None


def load_reference(home: Home, ref_id: str) -> tasks.Task:
    """The hand-written task an event points at; raises when there is none."""
    ref = tasks.load_task(home, tasks.check_task_id(ref_id))
    if ref.is_occurrence:
        raise RunnerError(f"task: {ref_id} must name a hand-written task")
    return ref


def task_fields(home: Home, occurrence: Occurrence) -> dict[str, Any]:
    """The user part of a new occurrence task (SPEC, "Task files")."""
    title = occurrence.title.strip() or None
    instructions = occurrence.description
    model = system = max_tokens = None
    delivery: dict[str, Any] = {}
    ref_id = task_reference(occurrence.description)
    if ref_id is not None:
        ref = load_reference(home, ref_id)
        instructions = ref.instructions
        model, system, max_tokens = ref.model, ref.system, ref.max_tokens
        delivery = ref.delivery.to_fields()  # output, notify, notify_on
        title = title or ref.title
    if not instructions.strip():
        instructions = title or "(an event without a description)"
    return {
        "title": title,
        "instructions": instructions,
        "model": model,
        "system": system,
        "max_tokens": max_tokens,
        **delivery,
        "source": occurrence.source,
        "calendar": occurrence.calendar,
        "caldav_uid": occurrence.uid,
        "occurrence": occurrence.start.isoformat(),
        "recurrence_id": occurrence.series_key,
        # The grants (tools, max_turns, max_run_tokens) are read from this task at run
        # time, never copied here: see runner/tasks/trust.py.
        "task": ref_id,
    }


def occurrence_path(home: Home, occurrence: Occurrence) -> Path:
    """Computed, never searched; keys.py makes any UID a safe path component."""
    return home.inside(tasks.task_path(home, occurrence.task_id))
