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

from dataclasses import replace
from datetime import timedelta
from typing import Any

from runner.brain.protocol import Brain
from runner.clock import Clock, utc_iso
from runner.errors import FileError, Problem, RunnerError
from runner.events import (
    Cancelled,
    EventSink,
    Finished,
    Fired,
    ProblemFound,
    Skipped,
    StepDone,
    notify,
)
from runner.home import Home
from runner.locks import holding_series
from runner.run import history as claims
from runner.run.delivery import (
    Queued,
    final_failure,
    forget_waiting_failure,
    queue_recovered_failure,
    queue_skip,
    queue_waiting_failure,
    send_pending,
)
from runner.run.executor import RunOutcome, run_locked
from runner.run.history import SeriesBook
from runner.run.plan import SeriesWork, Verdict, verdict
from runner.run.recovery import recover_locked
from runner.schedule.occurrence import Occurrence
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.tasks.occurrence import find_or_create
from runner.testpause import pause_point
from runner.tools.steps import Step, StepSink, error_text, output_bytes

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
    emit: EventSink = on_event or (lambda event: None)
    outcomes: list[RunOutcome] = []
    pending: list[Queued] = []  # outbox entries, sent once the lock is released
    try:
        with holding_series(home, work.key):
            for task_id in work.cancelled:
                _cancel_locked(home, task_id, emit)
            for occurrence in work.skipped:
                _skip_locked(home, settings, occurrence, clock, emit, pending)
            for occurrence in work.occurrences:
                outcome = _run_one_locked(home, settings, occurrence, brain, clock, emit, pending)
                if outcome is not None:
                    outcomes.append(outcome)
    finally:
        pause_point("series-before-notify")
        send_pending(home, settings, pending, clock, lambda m: notify(m, key=work.key))
    return outcomes


def _about(occurrence: Occurrence) -> dict[str, Any]:
    """The fields every event about an occurrence carries."""
    return {
        "task": occurrence.task_id,
        "key": occurrence.series_key,
        "title": occurrence.title,
        "calendar": occurrence.calendar,
        "fire_at": utc_iso(occurrence.fire_at),
    }


def _run_one_locked(
    home: Home,
    settings: Settings,
    occurrence: Occurrence,
    brain: Brain,
    clock: Clock,
    emit: EventSink,
    pending: list[Queued],
) -> RunOutcome | None:
    now = clock.now()
    if not now - timedelta(seconds=settings.grace) <= occurrence.fire_at <= now:
        return None  # no longer (or not yet) due: a clock jump, a slow queue
    problems: list[Problem] = []
    state, _ = verdict(
        home, settings, SeriesBook(home, occurrence.series_key), occurrence, now, problems
    )
    if state not in (Verdict.FRESH, Verdict.RETRY, Verdict.RUNNING):
        for problem in problems:
            emit(_problem(occurrence, problem))
        return None
    try:
        task = find_or_create(home, occurrence, clock)
    except RunnerError as exc:
        emit(_problem(occurrence, _as_problem(occurrence, exc)))
        return None
    if task.state.status == TaskStatus.RUNNING:
        task = recover_locked(home, task, clock)  # a crashed run: record it, then decide
        if task.state.status != TaskStatus.RUNNING:
            if task.state.status == TaskStatus.COMPLETED:
                claims.write_claim(home, task.id, "completed")
            state, _ = verdict(home, settings, SeriesBook(home, task.key), occurrence, now)
            if state == Verdict.DONE and task.state.status == TaskStatus.FAILED:
                # It died on its last try: that failure is final, and told like any other.
                forget_waiting_failure(home, task.id)
                queued = queue_recovered_failure(home, task)
                pending.extend([queued] if queued else [])
            if state != Verdict.RETRY:
                return None
    emit(Fired(**_about(occurrence), attempt=task.state.attempts + 1))
    started = clock.monotonic()
    # A failure is told once, after its last retry (SPEC "Delivery"): decided at the
    # run's end, and its notification kept there, before its final state.
    told = lambda: final_failure(home, settings, occurrence, clock.now())  # noqa: E731
    outcome = run_locked(home, settings, task, brain, clock, on_step=_shown(task, emit), final=told)
    if outcome.ok:
        claims.write_claim(home, task.id, "completed")
    if outcome.task is not None:
        _decide_notification(home, settings, occurrence, outcome, pending)
    emit(
        Finished(
            **_about(occurrence),
            status=outcome.status,
            final=outcome.told,
            error=outcome.record.error,
            usage=outcome.record.usage.to_dict(),
            seconds=round(clock.monotonic() - started, 3),
        )
    )
    return outcome


def _shown(task: tasks.Task, emit: EventSink) -> StepSink:
    """Each tool call of the run as an event: one line per call (SPEC "The loop")."""

    def show(step: Step) -> None:
        emit(
            StepDone(
                task=task.id,
                key=task.key,
                tool=step.tool,
                subject=step.subject,
                is_error=step.is_error,
                output_bytes=output_bytes(step),
                error=error_text(step),
            )
        )

    return show


def _decide_notification(
    home: Home,
    settings: Settings,
    occurrence: Occurrence,
    outcome: RunOutcome,
    pending: list[Queued],
) -> None:
    assert outcome.task is not None
    forget_waiting_failure(home, outcome.task.id)  # this try is the news now
    if not outcome.told:  # told later only if its retry never comes (the machine slept)
        last_chance = occurrence.fire_at + timedelta(seconds=settings.grace)
        queue_waiting_failure(home, outcome.task, outcome.record, last_chance)
        return
    # A told run's entry was kept before its final state (executor.Ending).
    pending.extend([outcome.notice] if outcome.notice else [])


def _as_problem(occurrence: Occurrence, exc: RunnerError) -> Problem:
    if isinstance(exc, FileError):
        return Problem.from_error(exc)
    return Problem(str(occurrence.path), None, f"{occurrence.task_id}: {exc.message}")


def _problem(occurrence: Occurrence, problem: Problem) -> ProblemFound:
    return ProblemFound(problem.message, occurrence.task_id, problem.path, problem.line)


def _skip_locked(
    home: Home,
    settings: Settings,
    occurrence: Occurrence,
    clock: Clock,
    emit: EventSink,
    pending: list[Queued],
) -> None:
    now = clock.now()
    state, _ = verdict(home, settings, SeriesBook(home, occurrence.series_key), occurrence, now)
    if state != Verdict.FRESH:
        return
    try:
        task = find_or_create(home, occurrence, clock, status=TaskStatus.SKIPPED)
        if task.state.status != TaskStatus.SKIPPED:
            tasks.write_state(task, replace(task.state, status=TaskStatus.SKIPPED))
    except RunnerError as exc:
        emit(_problem(occurrence, _as_problem(occurrence, exc)))
        return
    claims.write_claim(home, occurrence.task_id, "skipped")
    queued = queue_skip(home, task)
    pending.extend([queued] if queued else [])
    emit(Skipped(**_about(occurrence)))


def _cancel_locked(home: Home, task_id: str, emit: EventSink) -> None:
    try:
        task = tasks.load_task(home, task_id)
    except RunnerError:
        return
    if task.state.status != TaskStatus.PENDING:
        return
    tasks.write_state(task, replace(task.state, status=TaskStatus.CANCELLED))
    emit(Cancelled(task_id, task.key, task.title))


# -- find or create -------------------------------------------------------------------


# -- one pass -------------------------------------------------------
