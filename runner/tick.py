"""Due occurrences become tasks and run: `runner tick`, and the watch loop's engine.

plan.py decides what is due; `run_series` then works one series under its lock,
oldest first, and re-checks every decision there: another `tick` or the watch loop
may have got there first, and only the log (and claims) can say whether an
occurrence ran. So any number of runners on one home run each occurrence exactly
once, and an editor writing back an old `pending` copy of a task file runs nothing
again. Find-or-create computes each task's path from the UID and the original
start; it never searches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from . import claims, keys, tasks
from .brain import Brain
from .calendars.reader import CalendarCache
from .check import Problem
from .claims import SeriesBook
from .clock import Clock, utc_iso
from .errors import FileError, RunnerError
from .executor import RunOutcome, recover_locked, run_locked
from .fsutil import atomic_write
from .home import Home
from .locks import series_lock
from .plan import FRESH, RETRY, RUNNING, SeriesWork, next_wakeup, plan_due, task_path, verdict
from .schedule import Occurrence
from .settings import Settings

__all__ = [
    "EventSink",
    "SeriesWork",
    "TickResult",
    "find_or_create",
    "next_wakeup",
    "plan_due",
    "run_series",
    "task_fields",
    "tick",
]

log = logging.getLogger("runner")

EventSink = Callable[[str, dict[str, Any]], None]

_TASK_REF = re.compile(r"\Atask:[ \t]*(\S+)[ \t]*(?:\r?\n|\Z)")


@dataclass(frozen=True)
class TickResult:
    outcomes: tuple[RunOutcome, ...]
    skipped: tuple[str, ...]
    cancelled: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "ran": len(self.outcomes),
            "completed": sum(1 for o in self.outcomes if o.ok),
            "failed": sum(1 for o in self.outcomes if not o.ok),
            "skipped": len(self.skipped),
            "cancelled": len(self.cancelled),
            "problems": len(self.problems),
        }


# -- running one series ---------------------------------------------------------------


def run_series(
    home: Home,
    settings: Settings,
    work: SeriesWork,
    brain: Brain,
    clock: Clock,
    on_event: EventSink | None = None,
) -> list[RunOutcome]:
    """Do `work` under the series lock, re-checking each occurrence there."""
    emit = on_event or (lambda kind, data: None)
    outcomes: list[RunOutcome] = []
    lock = series_lock(home, work.key)
    lock.acquire()
    try:
        for task_id in work.cancelled:
            _cancel_locked(home, task_id, emit)
        for occurrence in work.skipped:
            _skip_locked(home, settings, occurrence, clock, emit)
        for occurrence in work.occurrences:
            outcome = _run_one_locked(home, settings, occurrence, brain, clock, emit)
            if outcome is not None:
                outcomes.append(outcome)
    finally:
        lock.release()
    return outcomes


def _event_data(occurrence: Occurrence, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task": occurrence.task_id,
        "key": occurrence.series_key,
        "title": occurrence.title,
        "calendar": occurrence.calendar,
        "fire_at": utc_iso(occurrence.fire_at),
    }
    data.update(extra)
    return data


def _run_one_locked(
    home: Home,
    settings: Settings,
    occurrence: Occurrence,
    brain: Brain,
    clock: Clock,
    emit: EventSink,
) -> RunOutcome | None:
    now = clock.now()
    if not now - timedelta(seconds=settings.grace) <= occurrence.fire_at <= now:
        return None  # no longer (or not yet) due: a clock jump, a slow queue
    problems: list[Problem] = []
    state, _ = verdict(
        home, settings, SeriesBook(home, occurrence.series_key), occurrence, now, problems
    )
    if state not in (FRESH, RETRY, RUNNING):
        for problem in problems:
            emit("problem", _problem_data(occurrence, problem))
        return None
    try:
        task = find_or_create(home, occurrence, clock)
    except RunnerError as exc:
        emit("problem", _problem_data(occurrence, _as_problem(occurrence, exc)))
        return None
    if task.state.status == "running":
        task = recover_locked(home, task, clock)  # a crashed run: record it, then decide
        if task.state.status != "running":
            if task.state.status == "completed":
                claims.write_claim(home, task.id, "completed")
            state, _ = verdict(home, settings, SeriesBook(home, task.key), occurrence, now)
            if state != RETRY:
                return None
    emit("fired", _event_data(occurrence, attempt=task.state.attempts + 1))
    started = clock.monotonic()
    outcome = run_locked(home, settings, task, brain, clock)
    if outcome.ok:
        claims.write_claim(home, task.id, "completed")
    emit(
        "finished",
        _event_data(
            occurrence,
            status=outcome.status,
            error=outcome.record.get("error"),
            usage=outcome.record.get("usage"),
            seconds=round(clock.monotonic() - started, 3),
        ),
    )
    return outcome


def _as_problem(occurrence: Occurrence, exc: RunnerError) -> Problem:
    if isinstance(exc, FileError):
        return Problem.from_error(exc)
    return Problem(str(occurrence.path), None, f"{occurrence.task_id}: {exc.message}")


def _problem_data(occurrence: Occurrence, problem: Problem) -> dict[str, Any]:
    return {
        "task": occurrence.task_id,
        "path": problem.path,
        "line": problem.line,
        "message": problem.message,
    }


def _skip_locked(
    home: Home, settings: Settings, occurrence: Occurrence, clock: Clock, emit: EventSink
) -> None:
    now = clock.now()
    state, _ = verdict(home, settings, SeriesBook(home, occurrence.series_key), occurrence, now)
    if state != FRESH:
        return
    try:
        task = find_or_create(home, occurrence, clock, status="skipped")
        if task.state.status != "skipped":
            tasks.write_state(task, replace(task.state, status="skipped"))
    except RunnerError as exc:
        emit("problem", _problem_data(occurrence, _as_problem(occurrence, exc)))
        return
    claims.write_claim(home, occurrence.task_id, "skipped")
    emit("skipped", _event_data(occurrence))


def _cancel_locked(home: Home, task_id: str, emit: EventSink) -> None:
    try:
        task = tasks.load_task(home, task_id)
    except RunnerError:
        return
    if task.state.status != "pending":
        return
    tasks.write_state(task, replace(task.state, status="cancelled"))
    emit("cancelled", {"task": task_id, "key": task.key, "title": task.title})


# -- find or create -------------------------------------------------------------------


def find_or_create(
    home: Home, occurrence: Occurrence, clock: Clock, status: str = "pending"
) -> tasks.Task:
    """The task of `occurrence`: its file if it exists, else a new one (under the lock)."""
    path = task_path(home, occurrence)
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
    ref_id = task_reference(occurrence.description)
    if ref_id is not None:
        ref = load_reference(home, ref_id)
        instructions = ref.instructions
        model, system, max_tokens = ref.model, ref.system, ref.max_tokens
        title = title or ref.title
    if not instructions.strip():
        instructions = title or "(an event without a description)"
    return {
        "title": title,
        "instructions": instructions,
        "model": model,
        "system": system,
        "max_tokens": max_tokens,
        "source": occurrence.source,
        "calendar": occurrence.calendar,
        "caldav_uid": occurrence.uid,
        "occurrence": occurrence.start.isoformat(),
        "recurrence_id": occurrence.series_key,
    }


# -- one pass -------------------------------------------------------


def tick(
    home: Home,
    settings: Settings,
    brain: Brain,
    clock: Clock,
    on_event: EventSink | None = None,
) -> TickResult:
    """One pass: every due occurrence gets its task and runs, series by series."""
    cache = CalendarCache(home, disk=True)
    calendars = cache.refresh(settings)
    problems: list[Problem] = []
    outcomes: list[RunOutcome] = []
    skipped: list[str] = []
    cancelled: list[str] = []

    def sink(kind: str, data: dict[str, Any]) -> None:
        if kind == "skipped":
            skipped.append(str(data["task"]))
        elif kind == "cancelled":
            cancelled.append(str(data["task"]))
        elif kind == "problem":
            problems.append(Problem(str(data["path"]), data["line"], str(data["message"])))
        if on_event is not None:
            on_event(kind, data)

    plan = plan_due(home, settings, calendars, clock.now(), problems)
    problems[:0] = calendars.problems
    cache.save()
    for work in plan:
        try:
            outcomes.extend(run_series(home, settings, work, brain, clock, sink))
        except FileError as exc:  # e.g. a log corrupted meanwhile: the other series go on
            problems.append(Problem.from_error(exc))
    return TickResult(tuple(outcomes), tuple(skipped), tuple(cancelled), tuple(problems))
