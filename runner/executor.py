"""The executor: run one task once, durably (the seed's TaskExecutor.run).

Under the series lock: recover an interrupted earlier run, mark the task `running`,
ask the brain with the series' context, append one log record, mark the task
`completed` or `failed`. The log record is written before the final state, so a crash
between the two is repaired from the log on recovery (nothing doubled), and a crash
before the record is recorded as `interrupted` (nothing lost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import logs, tasks
from .brain import Brain, BrainReply, BrainRequest, PriorTurn, TextSink, Usage
from .clock import Clock, utc_iso
from .compression import CompressResult, maybe_compress
from .errors import BrainError, RunnerError
from .home import Home
from .locks import acquire_waiting, series_lock, try_series_lock
from .settings import Settings
from .testpause import pause_point

log = logging.getLogger("runner")

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunOutcome:
    task_id: str
    key: str
    status: str
    record: dict[str, Any]
    compression: CompressResult | None = None  # set when the log was compressed after

    @property
    def ok(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class Recovery:
    task_id: str
    status: str  # what the task became: failed (interrupted) or what the log said


def prompt_for(task: tasks.Task) -> str:
    """The current instructions with the occurrence's facts."""
    facts = [f"Title: {task.title}"]
    if task.occurrence:
        facts.append(f"Scheduled: {task.occurrence}")
    if task.calendar:
        facts.append(f"Calendar: {task.calendar}")
    return task.instructions.rstrip("\n") + "\n\n---\n" + "\n".join(facts)


def history_from(contents: logs.LogContents) -> tuple[PriorTurn, ...]:
    return tuple(PriorTurn.from_record(r) for r in contents.executions)


def build_request(task: tasks.Task, settings: Settings, contents: logs.LogContents) -> BrainRequest:
    summary = contents.summary.get("text") if contents.summary else None
    return BrainRequest(
        model=task.model or settings.brain.model,
        max_tokens=task.max_tokens or settings.brain.max_tokens,
        prompt=prompt_for(task),
        session_id=task.session_id,
        system=task.system or settings.brain.system,
        summary=summary if isinstance(summary, str) and summary else None,
        history=history_from(contents),
    )


def execution_record(
    task: tasks.Task,
    *,
    started: str,
    finished: str,
    status: str,
    model: str | None,
    reply: BrainReply | None = None,
    error: str | None = None,
    retryable: bool = True,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "execution",
        "id": logs.new_record_id(),
        "task": task.id,
        "session_id": task.session_id,
        "occurrence": task.occurrence,
        "started": started,
        "finished": finished,
        "status": status,
        "model": reply.model if reply else model,
        "instructions": task.instructions,
        "response": reply.text if reply else None,
        "stop_reason": reply.stop_reason if reply else None,
        "usage": (reply.usage if reply else Usage()).to_dict(),
        "error": error,
    }
    if status == "failed" and not retryable:
        record["retryable"] = False  # auth / bad request: tick and watch do not retry
    return record


def recover_locked(home: Home, task: tasks.Task, clock: Clock) -> tasks.Task:
    """With the series lock held: a task that says `running` was interrupted.

    If its log record made it to disk before the crash, the task takes that record's
    status; otherwise a `failed` record with error `interrupted` is appended.
    """
    if task.state.status != "running":
        return task
    for record in reversed(logs.read_log(home, task.key).executions):
        if record.get("task") == task.id and record.get("started") == task.state.started:
            state = replace(
                task.state,
                status=str(record.get("status")),
                finished=record.get("finished"),
                error=record.get("error"),
            )
            log.warning("%s: finished before a crash; state repaired from its log", task.id)
            return tasks.write_state(task, state)
    now = utc_iso(clock.now())
    record = execution_record(
        task,
        started=task.state.started or now,
        finished=now,
        status="failed",
        model=None,
        error=INTERRUPTED,
    )
    logs.append_record(home, task.key, record)
    log.warning("%s: an earlier run was interrupted; recorded as failed", task.id)
    state = replace(task.state, status="failed", finished=now, error=INTERRUPTED)
    return tasks.write_state(task, state)


def recover_if_interrupted(home: Home, task: tasks.Task, clock: Clock) -> Recovery | None:
    """Recover `task` if it says `running` and no live process holds its lock."""
    if task.state.status != "running":
        return None
    lock = try_series_lock(home, task.key)
    if lock is None:
        return None  # a live run: never marked interrupted
    try:
        fresh = tasks.parse_task(home, task.path)
        fixed = recover_locked(home, fresh, clock)
        return Recovery(task.id, fixed.state.status) if fixed is not fresh else None
    finally:
        lock.release()


def run_task(
    home: Home,
    settings: Settings,
    task_id: str,
    brain: Brain,
    clock: Clock,
    on_text: TextSink | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Execute `task_id` exactly once now. Raises for a task that cannot load."""
    task = tasks.load_task(home, task_id)
    lock = series_lock(home, task.key)
    acquire_waiting(lock, task.key, on_wait)
    try:
        return run_locked(home, settings, tasks.load_task(home, task_id), brain, clock, on_text)
    finally:
        lock.release()


def run_locked(
    home: Home,
    settings: Settings,
    task: tasks.Task,
    brain: Brain,
    clock: Clock,
    on_text: TextSink | None = None,
) -> RunOutcome:
    """The body of a run; the caller holds the series lock of `task.key`."""
    task = recover_locked(home, task, clock)
    # Read the context before marking the task `running`: a log that cannot be read
    # (a bad line in the middle) then fails the command without leaving it stuck.
    contents = logs.read_log(home, task.key)
    started = utc_iso(clock.now())
    task = tasks.write_state(
        task,
        replace(
            task.state,
            status="running",
            attempts=task.state.attempts + 1,
            session_id=task.session_id,
            created=task.state.created or started,
            started=started,
            finished=None,
            error=None,
        ),
    )
    request = build_request(task, settings, contents)
    reply: BrainReply | None = None
    error: str | None = None
    retryable = True
    try:
        pause_point("executor-before-brain")
        reply = brain.complete(request, on_text)
    except BrainError as exc:
        error, retryable = exc.message, exc.retryable
    except RunnerError as exc:
        error = exc.message
    except BaseException as exc:
        # Ctrl-C, SIGTERM or a bug: record it so the task is never stuck `running`.
        error = INTERRUPTED if isinstance(exc, KeyboardInterrupt | SystemExit) else repr(exc)
        _finish(home, task, clock, started, request.model, None, error, True)
        raise
    outcome = _finish(home, task, clock, started, request.model, reply, error, retryable)
    return replace(outcome, compression=compress_after(home, settings, task.key, brain, clock))


def compress_after(
    home: Home, settings: Settings, key: str, brain: Brain, clock: Clock
) -> CompressResult | None:
    """Compress the log if it needs it, still under the series lock.

    The execution is already recorded and its task state written: nothing that goes
    wrong here may turn it into a failed one, so every error is only a warning.
    """
    try:
        return maybe_compress(home, settings, key, brain, clock)
    except Exception as exc:
        log.warning("%s: compression skipped: %s", key, exc)
        return None


def _finish(
    home: Home,
    task: tasks.Task,
    clock: Clock,
    started: str,
    model: str,
    reply: BrainReply | None,
    error: str | None,
    retryable: bool,
) -> RunOutcome:
    finished = utc_iso(clock.now())
    status = "completed" if reply is not None and error is None else "failed"
    record = execution_record(
        task,
        started=started,
        finished=finished,
        status=status,
        model=model,
        reply=reply,
        error=error,
        retryable=retryable,
    )
    logs.append_record(home, task.key, record)
    pause_point("executor-after-append")
    tasks.write_state(task, replace(task.state, status=status, finished=finished, error=error))
    return RunOutcome(task.id, task.key, status, record)
