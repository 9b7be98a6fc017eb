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

from runner.brain.context import build_request
from runner.brain.protocol import Brain, BrainReply, TextSink
from runner.clock import Clock, parse_utc_iso, utc_iso
from runner.errors import BrainError, RunnerError
from runner.home import Home
from runner.locks import acquire_waiting, series_lock
from runner.logs import store as logs
from runner.logs.compression import CompressResult, maybe_compress
from runner.logs.records import INTERRUPTED, ExecutionRecord
from runner.run.delivery import (
    Pending,
    output_for,
    prewarm_for,
    run_report,
    send_pending,
    write_record_output,
)
from runner.run.recovery import recover_locked
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.testpause import pause_point

log = logging.getLogger("runner")


@dataclass(frozen=True)
class RunOutcome:
    task_id: str
    key: str
    status: str
    record: ExecutionRecord
    compression: CompressResult | None = None  # set when the log was compressed after
    task: tasks.Task | None = None  # as it ended (for delivery)

    @property
    def ok(self) -> bool:
        return self.status == TaskStatus.COMPLETED


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
    warming = prewarm_for(settings, task)  # Apprise, when a message is sure to follow
    acquire_waiting(lock, task.key, on_wait)
    try:
        outcome = run_locked(home, settings, tasks.load_task(home, task_id), brain, clock, on_text)
    finally:
        lock.release()
        if warming is not None:
            warming.join(10)  # never leave a half-done import to interpreter shutdown
    # Asked for by hand, it runs once: a failure is final. Sent outside the lock.
    if outcome.task is not None:
        pending = Pending(run_report(outcome.task, outcome.record), outcome.task.delivery)
        send_pending(home, settings, [pending], clock, lambda m: log.warning("%s", m))
    return outcome


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
            status=TaskStatus.RUNNING,
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
    done = reply is not None and error is None
    status = TaskStatus.COMPLETED if done else TaskStatus.FAILED
    output = output_for(task, parse_utc_iso(started)) if done else None
    record = ExecutionRecord.of_run(
        task,
        started=started,
        finished=finished,
        status=status,
        model=model,
        reply=reply,
        error=error,
        retryable=retryable,
        output=output,
    )
    logs.append_record(home, task.key, record)
    pause_point("executor-after-append")
    write_record_output(home, task.id, record)  # before the state: recovery redoes it
    pause_point("executor-after-output")
    task = tasks.write_state(
        task, replace(task.state, status=status, finished=finished, error=error)
    )
    return RunOutcome(task.id, task.key, status, record, task=task)
