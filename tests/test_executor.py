from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from runner.brain.offline import OfflineBrain
from runner.brain.protocol import BrainReply, BrainRequest, TextSink, Usage
from runner.errors import BrainError, LogCorruptError, UsageError
from runner.home import Home
from runner.locks import try_series_lock
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord
from runner.run import executor, recovery
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from tests.fakes import FakeClock, RecordingBrain


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))


def write(home: Home, task_id: str, text: str) -> None:
    path = home.tasks / f"{task_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_run_completes_and_records(home: Home, clock: FakeClock) -> None:
    chunks: list[str] = []
    outcome = executor.run_task(home, Settings(), "hello", OfflineBrain(), clock, chunks.append)
    assert outcome.ok and outcome.key == "hello"
    assert "".join(chunks) == outcome.record.response
    assert "[offline brain]" in outcome.record.response
    task = tasks.load_task(home, "hello")
    assert task.state.status == "completed" and task.state.attempts == 1
    assert task.state.session_id == task.session_id
    assert task.state.started == "2026-11-26T08:00:00.000000Z"
    [record] = logs.read_log(home, "hello").executions
    assert record.status == "completed" and record.model == "offline"
    assert record.session_id == task.session_id and record.error is None
    assert set(record.usage.to_dict()) == set(logs.USAGE_KEYS)


def test_session_continuity_sends_prior_runs_in_order(home: Home, clock: FakeClock) -> None:
    brain = RecordingBrain()
    for n in range(3):
        write(home, "journal", f"title: J\ninstructions: step {n}\n")
        executor.run_task(home, Settings(), "journal", brain, clock)
        clock.advance(60)
    first, second, third = brain.requests
    assert first.history == ()
    assert [t.instructions for t in second.history] == ["step 0"]
    assert [t.instructions for t in third.history] == ["step 0", "step 1"]
    assert {r.session_id for r in brain.requests} == {tasks.load_task(home, "journal").session_id}
    assert third.prompt.startswith("step 2\n") and "Title: J" in third.prompt


def test_shared_key_shares_a_session(home: Home, clock: FakeClock) -> None:
    write(home, "a", "instructions: from a\nkey: shared\n")
    write(home, "b", "instructions: from b\nkey: shared\n")
    brain = RecordingBrain()
    executor.run_task(home, Settings(), "a", brain, clock)
    executor.run_task(home, Settings(), "b", brain, clock)
    assert [t.instructions for t in brain.requests[1].history] == ["from a"]
    assert len(logs.read_log(home, "shared").executions) == 2


def test_failed_brain_call_is_recorded(home: Home, clock: FakeClock) -> None:
    error = BrainError("authentication failed: check ANTHROPIC_API_KEY", retryable=False)
    brain = RecordingBrain(error, summary_error=error)
    outcome = executor.run_task(home, Settings(), "hello", brain, clock)
    assert outcome.status == "failed"
    assert str(outcome.record.error).startswith("authentication failed")
    assert outcome.record.retryable is False and outcome.record.response is None
    task = tasks.load_task(home, "hello")
    assert task.state.status == "failed" and task.state.error == outcome.record.error
    # A failed prior run is context too.
    brain2 = RecordingBrain()
    executor.run_task(home, Settings(), "hello", brain2, clock)
    [turn] = brain2.requests[0].history
    assert turn.status == "failed" and turn.error is not None


def test_unknown_task_is_a_usage_error(home: Home, clock: FakeClock) -> None:
    with pytest.raises(UsageError):
        executor.run_task(home, Settings(), "missing", OfflineBrain(), clock)


def _mark_running(home: Home, task_id: str, started: str) -> tasks.Task:
    task = tasks.load_task(home, task_id)
    return tasks.write_state(
        task, replace(task.state, status=TaskStatus.RUNNING, attempts=1, started=started)
    )


def test_interrupted_run_is_recovered_once(home: Home, clock: FakeClock) -> None:
    task = _mark_running(home, "hello", "2026-11-26T07:59:00.000000Z")
    recovered = recovery.recover_if_interrupted(home, task, clock)
    assert recovered is not None and recovered.status == "failed"
    [record] = logs.read_log(home, "hello").executions
    assert record.status == "failed" and record.error == "interrupted"
    assert record.started == "2026-11-26T07:59:00.000000Z"
    again = tasks.load_task(home, "hello")
    assert again.state.status == "failed" and again.state.error == "interrupted"
    assert recovery.recover_if_interrupted(home, again, clock) is None
    assert len(logs.read_log(home, "hello").executions) == 1


def test_live_run_is_never_marked_interrupted(home: Home, clock: FakeClock) -> None:
    task = _mark_running(home, "hello", "2026-11-26T07:59:00.000000Z")
    lock = try_series_lock(home, "hello")  # stands in for the live run holding its lock
    assert lock is not None
    try:
        assert recovery.recover_if_interrupted(home, task, clock) is None
    finally:
        lock.release()
    assert tasks.load_task(home, "hello").state.status == "running"
    assert logs.read_log(home, "hello").executions == []


def test_crash_after_the_record_is_repaired_from_the_log(home: Home, clock: FakeClock) -> None:
    started = "2026-11-26T07:59:00.000000Z"
    task = _mark_running(home, "hello", started)
    # The run appended its record, then died before writing the final state.
    logs.append_record(
        home,
        "hello",
        ExecutionRecord.of_run(
            task,
            started=started,
            finished="2026-11-26T07:59:04.000000Z",
            status=TaskStatus.COMPLETED,
            model="offline",
            reply=BrainReply("done", "offline", Usage(1, 1)),
        ),
    )
    recovered = recovery.recover_if_interrupted(home, task, clock)
    assert recovered is not None and recovered.status == "completed"
    assert len(logs.read_log(home, "hello").executions) == 1  # nothing doubled
    state = tasks.load_task(home, "hello").state
    assert state.status == "completed" and state.finished == "2026-11-26T07:59:04.000000Z"


def test_run_recovers_before_running(home: Home, clock: FakeClock) -> None:
    _mark_running(home, "hello", "2026-11-26T07:59:00.000000Z")
    outcome = executor.run_task(home, Settings(), "hello", OfflineBrain(), clock)
    statuses = [(r.status, r.error) for r in logs.read_log(home, "hello").executions]
    assert statuses == [("failed", "interrupted"), ("completed", None)]
    assert outcome.ok and tasks.load_task(home, "hello").state.attempts == 2


def test_keyboard_interrupt_never_leaves_running(home: Home, clock: FakeClock) -> None:
    class CtrlC(OfflineBrain):
        def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        executor.run_task(home, Settings(), "hello", CtrlC(), clock)
    state = tasks.load_task(home, "hello").state
    assert state.status == "failed" and state.error == "interrupted"
    [record] = logs.read_log(home, "hello").executions
    assert record.error == "interrupted"


def test_unreadable_log_does_not_leave_the_task_running(home: Home, clock: FakeClock) -> None:
    executor.run_task(home, Settings(), "hello", OfflineBrain(), clock)
    path = home.logs / "hello.jsonl"
    path.write_text("garbage\n" + path.read_text())
    with pytest.raises(LogCorruptError):
        executor.run_task(home, Settings(), "hello", OfflineBrain(), clock)
    state = tasks.load_task(home, "hello").state
    assert state.status == "completed" and state.attempts == 1


def test_the_series_lock_context_waits_or_yields_false(home: Home) -> None:
    from runner.locks import holding_series

    with holding_series(home, "hello") as held:
        assert held
        with holding_series(home, "hello", wait=False) as other:
            assert other is False  # held elsewhere: nothing taken, nothing released
        assert try_series_lock(home, "hello") is None  # still held by the outer block
    with holding_series(home, "hello", wait=False) as again:
        assert again
    lock = try_series_lock(home, "hello")
    assert lock is not None  # released at the end of each block
    lock.release()
