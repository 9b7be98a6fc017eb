"""Recovery: a task found `running` whose process is gone was interrupted.

Done once per run, under the series lock (or with it taken here when nobody holds it:
flock is released by the kernel when its holder dies, so a held lock means a live run,
which is never marked interrupted). If the run's log record made it to disk before the
crash, the task takes that record's status; otherwise a `failed` record with error
`interrupted` is appended, so nothing is lost and nothing doubled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from runner.clock import Clock, utc_iso
from runner.events import notify
from runner.home import Home
from runner.locks import holding_series
from runner.logs import store as logs
from runner.logs.records import INTERRUPTED, ExecutionRecord
from runner.run.delivery import queue_run, write_record_output
from runner.run.journal import execution_id, read_steps, remove_journal
from runner.tasks import files as tasks
from runner.tasks.files import STATUSES, TaskStatus


@dataclass(frozen=True)
class Recovery:
    task_id: str
    status: str  # what the task became: failed (interrupted) or what the log said


def recover_locked(home: Home, task: tasks.Task, clock: Clock) -> tasks.Task:
    """With the series lock held: a task that says `running` was interrupted.

    If its log record made it to disk before the crash, the task takes that record's
    status; otherwise a `failed` record with error `interrupted` is appended.
    """
    if task.state.status != TaskStatus.RUNNING:
        return task
    found = _recorded(home, task)
    if found is not None:
        state = replace(
            task.state,
            status=TaskStatus(found.status) if found.status in STATUSES else TaskStatus.FAILED,
            finished=found.finished or None,
            error=found.error,
        )
        notify(f"{task.id}: finished before a crash; state repaired from its log")
        write_record_output(home, task.id, found)  # the crash may have come first
        if found.completed:  # and its notification (the same outbox entry if it was kept)
            queue_run(home, task, found)
        remove_journal(home, execution_id(task.id, str(task.state.started), task.state.attempts))
        return tasks.write_state(task, state)
    now = utc_iso(clock.now())
    started = task.state.started or now
    # The steps the dead run had finished (journal.py): kept in its record, so the
    # retry's context says what was already done.
    exec_id = execution_id(task.id, started, task.state.attempts)
    record = ExecutionRecord.of_run(
        task,
        started=started,
        finished=now,
        status=TaskStatus.FAILED,
        model=None,
        error=INTERRUPTED,
        record_id=exec_id,
        steps=read_steps(home, exec_id),
    )
    logs.append_record(home, task.key, record)
    remove_journal(home, exec_id)
    notify(f"{task.id}: an earlier run was interrupted; recorded as failed")
    state = replace(task.state, status=TaskStatus.FAILED, finished=now, error=INTERRUPTED)
    return tasks.write_state(task, state)


def _recorded(home: Home, task: tasks.Task) -> ExecutionRecord | None:
    """The log record of the run that `task` says is `running`, if it reached disk.

    The archive is searched too: a compression between the crash and this recovery
    may have moved the record there (issue 13: the occurrence was then recorded as
    interrupted and run a second time). A live log without a summary header was never
    compressed, or its compression crashed before the replace, so every archived
    record is still in it as well: the archive is read only for a compressed log, and
    only in this rare case of a crashed run.
    """
    contents = logs.read_log(home, task.key)
    for record in reversed(contents.executions):
        if record.task == task.id and record.started == task.state.started:
            return record
    if contents.summary is None:
        return None
    for record in reversed(logs.read_archive(home, task.key)):
        if record.task == task.id and record.started == task.state.started:
            return record
    return None


def recover_if_interrupted(home: Home, task: tasks.Task, clock: Clock) -> Recovery | None:
    """Recover `task` if it says `running` and no live process holds its lock."""
    if task.state.status != TaskStatus.RUNNING:
        return None
    with holding_series(home, task.key, wait=False) as held:
        if not held:
            return None  # a live run: never marked interrupted
        fresh = tasks.parse_task(home, task.path)
        fixed = recover_locked(home, fresh, clock)
        return Recovery(task.id, fixed.state.status) if fixed is not fresh else None
