"""After a run: its output file, and who is told about it.

The output file is written under the series lock, right after the run's record and
before its final task state: a crash in between leaves the task `running`, and
recovery (which finds the record) writes the missing file from it. A notification is
decided under the lock and kept in the outbox (deliver/outbox.py) there — a completed
run's before its final state, so recovery can decide it again — then sent by the
caller after it releases the lock, so a slow or dead target never holds up another
run of the series. A failure is reported once per occurrence: only when `tick` and
`watch` will not try it again.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from runner.clock import Clock, utc_iso
from runner.deliver import outbox
from runner.deliver.message import Report
from runner.deliver.notify import Sent, deliver, wanted
from runner.deliver.output import OutputRefused, render_output, write_output
from runner.deliver.send import prewarm
from runner.errors import RunnerError
from runner.events import notify
from runner.home import Home
from runner.logs.records import ExecutionRecord
from runner.run.history import SeriesBook
from runner.run.journal import execution_id
from runner.run.plan import Verdict, verdict
from runner.schedule.occurrence import Occurrence
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.delivery import Delivery

Warn = Callable[[str], None]
Queued = str | outbox.Unkept  # an outbox entry's name, or one held in memory


def queue(home: Home, name: str, report: Report, delivery: Delivery) -> Queued | None:
    """Keep a decided notification in the outbox, if its `notify_on` asks for it.

    Returns what to send after the lock is released. A disk too full to keep it is a
    warning, and the message is held in memory instead (sent, but not safe from a
    crash before that): the run's own record and state come first.
    """
    if report.status not in delivery.notify_on:
        return None
    try:
        return outbox.put(home, name, report, delivery)
    except OSError as exc:
        notify(f"{report.task_id}: notification not kept for sending: {exc.strerror or exc}")
        return outbox.Unkept(report, delivery)


def queue_run(home: Home, task: tasks.Task, record: ExecutionRecord) -> Queued | None:
    """A run's notification, named by its execution id (a retry writes the same entry)."""
    return queue(home, record.id, run_report(task, record), task.delivery)


def queue_waiting_failure(
    home: Home, task: tasks.Task, record: ExecutionRecord, last_chance: datetime
) -> None:
    """A failure with a retry to come: told only if no retry has replaced it by
    `last_chance` (the occurrence's time plus `grace`), e.g. the machine slept."""
    if "failed" not in task.delivery.notify_on:
        return
    report = run_report(task, record)
    note = "not retried: the next try did not come before `grace` passed"
    report = replace(report, text=f"{report.text or 'failed'}\n({note})")
    try:
        outbox.put(
            home,
            _waiting_name(task.id),
            report,
            task.delivery,
            due=utc_iso(last_chance),
            key=task.key,
        )
    except OSError as exc:
        notify(f"{task.id}: notification not kept for later: {exc.strerror or exc}")


def forget_waiting_failure(home: Home, task_id: str) -> None:
    """A new try of `task_id` ran: a failure kept for later is no longer the news."""
    outbox.forget(home, _waiting_name(task_id))


def _waiting_name(task_id: str) -> str:
    return _name_for("retry", task_id)


def _name_for(kind: str, task_id: str) -> str:
    """An outbox name for a notification that has no execution id of its own."""
    return f"{kind}-" + uuid.uuid5(uuid.NAMESPACE_URL, task_id).hex


def queue_recovered_failure(home: Home, task: tasks.Task) -> Queued | None:
    """The final failure of a run that recovery recorded (it died; no retry is left)."""
    report = Report(
        task_id=task.id,
        title=task.title,
        status="failed",
        when=task.occurrence or task.state.finished,
        text=task.state.error,
        attempts=task.state.attempts,
    )
    name = execution_id(task.id, str(task.state.started), task.state.attempts)
    return queue(home, name, report, task.delivery)


def queue_skip(home: Home, task: tasks.Task) -> Queued | None:
    return queue(home, _name_for("skip", task.id), skip_report(task), task.delivery)


def output_for(task: tasks.Task, started: datetime) -> str | None:
    """The home-relative output path of this run, or None (with a warning if refused)."""
    try:
        return render_output(task, started)
    except OutputRefused as exc:
        notify(exc.message)
        return None


def write_record_output(home: Home, task_id: str, record: ExecutionRecord) -> None:
    """Write a completed record's answer to the file it names; a warning if it cannot."""
    relative, text = record.output, record.response
    if not record.completed or not isinstance(relative, str) or text is None:
        return
    try:
        write_output(home, relative, text)
    except OutputRefused as exc:
        notify(f"{task_id}: output not written: {exc.message}")
    except OSError as exc:
        notify(f"{task_id}: output {relative} not written: {exc.strerror or exc}")


def run_report(task: tasks.Task, record: ExecutionRecord) -> Report:
    text = record.response if record.completed else record.error
    return Report(
        task_id=task.id,
        title=task.title,
        status=str(record.status),
        when=task.occurrence or record.finished,
        text=text,
        output=record.output if record.completed else None,
        attempts=task.state.attempts,
    )


def skip_report(task: tasks.Task) -> Report:
    return Report(task.id, task.title, "skipped", task.occurrence, "missed; not run per catch_up")


def final_failure(home: Home, settings: Settings, occurrence: Occurrence, now: datetime) -> bool:
    """True when `tick` and `watch` will not try this failed occurrence again:
    attempts used up, a failure not worth retrying, or the next try past `grace`."""
    state, retry_at = verdict(
        home, settings, SeriesBook(home, occurrence.series_key), occurrence, now
    )
    if state == Verdict.DONE:
        return True
    grace = timedelta(seconds=settings.grace)
    return state == Verdict.WAIT and retry_at is not None and retry_at > occurrence.fire_at + grace


def prewarm_for(settings: Settings, task: tasks.Task) -> threading.Thread | None:
    """Start importing Apprise when this run's end is sure to be told (`completed`
    in `notify_on`, with a target): the import then overlaps the brain call."""
    names, _ = wanted(settings, task.delivery, "completed")
    return prewarm() if names else None


def send_pending(
    home: Home, settings: Settings, names: list[Queued], clock: Clock, warn: Warn
) -> list[Sent]:
    """Send the notifications decided under the lock (unless another process already
    took one); never raises for a target's trouble. A send that failed stays in the
    outbox for another try (outbox.again)."""
    sent: list[Sent] = []
    for name in names:
        if isinstance(name, outbox.Unkept):
            sent.extend(deliver(home, settings, name.report, name.delivery, clock, warn))
            continue
        path = outbox.claim(home, name)
        entry = outbox.load(path, warn) if path is not None else None
        if entry is None:
            continue
        if entry.key is not None and _retried(home, entry):
            outbox.done(entry.path)
            continue
        results: list[Sent] = []
        try:
            results = deliver(home, settings, entry.report, entry.delivery, clock, warn)
        finally:
            _settle(entry, results, clock, warn)
        sent.extend(results)
    return sent


def _retried(home: Home, entry: outbox.Entry) -> bool:
    """Whether a failure that waited was since retried (its news is stale)."""
    assert entry.key is not None
    try:
        history = SeriesBook(home, entry.key).history(entry.report.task_id)
    except RunnerError:
        return False  # a log that cannot be read: tell rather than drop
    return history.completed or history.attempts > entry.report.attempts


def _settle(entry: outbox.Entry, results: list[Sent], clock: Clock, warn: Warn) -> None:
    """Remove a sent entry; keep one whose send failed for another try, or give up."""
    failed = tuple(s.target for s in results if not s.ok)
    if not failed:
        outbox.sent(entry.path)
        return
    who = f"{entry.report.task_id}: notification to {', '.join(failed)}"
    try:
        if not outbox.again(entry, failed, clock.now()):
            warn(f"{who} given up after {outbox.MAX_SENDS} tries")
    except OSError as exc:
        outbox.done(entry.path)
        warn(f"{who} not kept for another try: {exc.strerror or exc}")


def flush_outbox(home: Home, settings: Settings, clock: Clock, warn: Warn) -> list[Sent]:
    """Send what a process that died left in the outbox (SPEC: nothing is lost), and
    what failed to send before once its next try is due."""
    try:
        names: list[Queued] = list(outbox.leftovers(home, clock.now()))
    except OSError as exc:
        warn(f"the notification outbox cannot be read: {exc.strerror or exc}")
        return []
    return send_pending(home, settings, names, clock, warn)
