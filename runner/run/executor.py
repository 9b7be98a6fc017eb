"""The executor: run one task once, durably (the seed's TaskExecutor.run).

Under the series lock: recover an interrupted earlier run, mark the task `running`,
ask the brain with the series' context, append one log record, mark the task
`completed` or `failed`. The log record is written before the final state, so a crash
between the two is repaired from the log on recovery (nothing doubled), and a crash
before the record is recorded as `interrupted` (nothing lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from runner.brain.context import build_request
from runner.brain.protocol import Brain, BrainReply, RunStopped, TextSink, Usage, runs_own_tools
from runner.clock import Clock, parse_utc_iso, utc_iso
from runner.errors import BrainError, RunnerError
from runner.events import notify
from runner.home import Home
from runner.locks import holding_series
from runner.logs import store as logs
from runner.logs.compression import CompressResult, maybe_compress
from runner.logs.records import INTERRUPTED, ExecutionRecord
from runner.logs.tail import read_recent
from runner.run.delivery import (
    Queued,
    flush_outbox,
    forget_waiting_failure,
    output_for,
    prewarm_for,
    queue_run,
    send_pending,
    write_record_output,
)
from runner.run.journal import execution_id, remove_journal
from runner.run.recovery import recover_locked
from runner.run.toolrun import StepLog, equip
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.testpause import pause_point
from runner.tools.steps import StepSink
from runner.tools.toolset import Toolset

LARGE_LOG = 32_000_000  # bytes; a healthy live log is far smaller (logs/tail.py)


Final = Callable[[], bool]  # whether a failed run's failure is final (after its record)


@dataclass(frozen=True)
class RunOutcome:
    task_id: str
    key: str
    status: str
    record: ExecutionRecord
    compression: CompressResult | None = None  # set when the log was compressed after
    task: tasks.Task | None = None  # as it ended (for delivery)
    notice: Queued | None = None  # its notification, kept before its final state
    told: bool = False  # completed, or a failure its caller called final: it is told

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
    on_step: StepSink | None = None,
) -> RunOutcome:
    """Execute `task_id` exactly once now. Raises for a task that cannot load."""
    first = tasks.load_task(home, task_id)
    warming = prewarm_for(settings, first)  # Apprise, when a message is sure to follow
    names: list[Queued] = []  # notifications, sent once the lock is released
    try:
        with holding_series(home, first.key, on_wait=on_wait):
            # Read again under the lock; an earlier run that crashed is recovered once, here.
            task = recover_locked(home, tasks.load_task(home, task_id), clock)
            # Asked for by hand, it runs once: a failure is final. Its notification is
            # kept before the final state (Ending), so a crash cannot lose it.
            outcome = run_locked(
                home, settings, task, brain, clock, on_text, on_step, final=lambda: True
            )
            if outcome.task is not None:
                forget_waiting_failure(home, outcome.task.id)
                names.extend([outcome.notice] if outcome.notice else [])
    finally:
        if warming is not None:
            warming.join(10)  # never leave a half-done import to interpreter shutdown
    warn = lambda m: notify(m, key=first.key)  # noqa: E731
    pause_point("run-before-notify")
    send_pending(home, settings, names, clock, warn)
    flush_outbox(home, settings, clock, warn)  # what a run that died left unsent
    return outcome


def run_locked(
    home: Home,
    settings: Settings,
    task: tasks.Task,
    brain: Brain,
    clock: Clock,
    on_text: TextSink | None = None,
    on_step: StepSink | None = None,
    final: Final | None = None,
) -> RunOutcome:
    """The body of a run. The caller holds the series lock of `task.key` and has
    recovered the task if a crashed run left it `running` (recover_locked)."""
    # Read the context before marking the task `running`: a log that cannot be read
    # (a bad line in the middle) then fails the command without leaving it stuck.
    # Only the header and the recent executions: a run's cost does not grow with the
    # live log (logs/tail.py says how "recent" is bounded).
    contents = read_recent(home, task.key, settings.compression.max_executions)
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
    sink = StepLog(home, execution_id(task.id, started, task.state.attempts), on_step)
    end = Ending(home, task, clock, started, request.model, sink, final)
    toolset: Toolset | None = None
    try:
        pause_point("executor-before-brain")
        own = runs_own_tools(brain)
        request, toolset = equip(home, settings, task, request, sink, clock, open_tools=not own)
        reply = brain.complete(request, on_text)
        sink.close()  # the last step's sync: a failure fails the run (below), loudly
    except RunStopped as exc:  # a limit or an API failure part-way through the loop
        outcome = end.failed(exc.message, exc.retryable, exc.usage, exc.turns)
    except BrainError as exc:
        outcome = end.failed(exc.message, exc.retryable)
    except RunnerError as exc:
        outcome = end.failed(exc.message, True)
    except BaseException as exc:
        # Ctrl-C, SIGTERM or a bug: record it so the task is never stuck `running`.
        error = INTERRUPTED if isinstance(exc, KeyboardInterrupt | SystemExit) else repr(exc)
        end.failed(error, True)
        raise
    else:
        outcome = end.completed(reply)
    finally:
        if toolset is not None:
            _close(toolset)
    return replace(outcome, compression=compress_after(home, settings, task.key, brain, clock))


def _close(toolset: Toolset) -> None:
    try:
        toolset.close()
    except Exception as exc:  # the record is written: a server that will not stop is a warning
        notify(f"closing the tools failed: {exc}")


def compress_after(
    home: Home, settings: Settings, key: str, brain: Brain, clock: Clock
) -> CompressResult | None:
    """Compress the log if it needs it, still under the series lock.

    The execution is already recorded and its task state written: nothing that goes
    wrong here may turn it into a failed one, so every error is only a warning.
    """
    size = _size(logs.log_path(home, key))
    if size > LARGE_LOG:
        # Folding an overgrown log takes passes over all of it: not inside a run, whose cost
        # must stay bounded. Said on every run until it is done.
        notify(
            f"{key}: the live log is {size // 1_000_000} MB; "
            f"compress it with `runner compress {key}`",
            key=key,
        )
        return None
    try:
        return maybe_compress(home, settings, key, brain, clock)
    except Exception as exc:
        notify(f"{key}: compression skipped: {exc}")
        return None


@dataclass
class Ending:
    """How a run ends: its record appended (with the journal's steps), the answer
    delivered to its `output` file, then its state."""

    home: Home
    task: tasks.Task
    clock: Clock
    started: str
    model: str
    sink: StepLog
    final: Final | None = None  # whether a failure is final (told), asked after its record

    def completed(self, reply: BrainReply) -> RunOutcome:
        return self._finish(TaskStatus.COMPLETED, reply, None, True, reply.usage, reply.turns)

    def failed(
        self, error: str, retryable: bool, usage: Usage | None = None, turns: int | None = None
    ) -> RunOutcome:
        return self._finish(TaskStatus.FAILED, None, error, retryable, usage, turns)

    def _finish(
        self,
        status: TaskStatus,
        reply: BrainReply | None,
        error: str | None,
        retryable: bool,
        usage: Usage | None,
        turns: int | None,
    ) -> RunOutcome:
        task = self.task
        # The journal's last sync ends before the record goes in: the record never
        # overtakes its steps. A failed sync (journal.py) is raised once the run is
        # recorded with its own outcome; a completed run closed its journal already
        # (run_locked), so there such a failure made it a failed run.
        unsynced = self._close_journal()
        finished = utc_iso(self.clock.now())
        done = status == TaskStatus.COMPLETED
        output = output_for(task, parse_utc_iso(self.started)) if done else None
        record = ExecutionRecord.of_run(
            task,
            started=self.started,
            finished=finished,
            status=status,
            model=self.model,
            reply=reply,
            error=error,
            retryable=retryable,
            output=output,
            record_id=self.sink.exec_id,
            steps=self.sink.steps,
            turns=turns,
            usage=usage,
        )
        logs.append_record(self.home, task.key, record)
        remove_journal(self.home, self.sink.exec_id)
        pause_point("executor-after-append")
        write_record_output(self.home, task.id, record)  # before the state: recovery redoes it
        # Kept before the state too, so a crash cannot lose it (recovery redoes a
        # completed one; a failure is kept when the caller calls it final).
        told = done or (self.final is not None and self.final())
        notice = queue_run(self.home, task, record) if told else None
        pause_point("executor-after-output")
        state = replace(task.state, status=status, finished=finished, error=error)
        task = tasks.write_state(task, state)
        pause_point("executor-after-state")
        if unsynced is not None:
            raise unsynced
        return RunOutcome(task.id, task.key, status, record, task=task, notice=notice, told=told)

    def _close_journal(self) -> OSError | None:
        try:
            self.sink.close()
        except OSError as exc:
            return exc
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
