"""The step journal (runner/run/journal.py): each step written at once, synced in a
helper thread while the loop goes on; in order, never overtaken by the record, a
failed sync an error. Real files, a real FIFO for a sync that fails, real SIGKILL."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.brain.anthropic_brain import AnthropicBrain
from runner.clock import utc_iso
from runner.home import Home
from runner.init import init_home
from runner.logs import store as logs
from runner.run.executor import run_task
from runner.run.journal import Journal, execution_id, journal_path, read_steps
from runner.run.toolrun import StepLog
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tools.steps import Step
from tests.conftest import cli, kill_at
from tests.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.fakes import FakeClock
from tests.test_tool_loop import TASK, api, settings, use  # noqa: F401  (fixtures)

START = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def step(n: int, output: str = "ok") -> Step:
    return Step("read_file", {"path": f"notes/{n}.md"}, output, False, "s", "f")


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_steps_are_written_at_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "x.jsonl"
    journal = Journal(path)
    journal.append(step(1))
    assert len(lines(path)) == 1  # written before append returns, sync or not
    journal.append(step(2))
    journal.close()
    assert [json.loads(line)["input"]["path"] for line in lines(path)] == [
        "notes/1.md",
        "notes/2.md",
    ]


class SlowDisk:
    """A sync that waits until released, recording what the file held meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.release = threading.Event()
        self.started = threading.Event()
        self.seen: list[int] = []

    def __call__(self, fd: int) -> None:
        self.seen.append(len(lines(self.path)))
        self.started.set()
        assert self.release.wait(10)
        os.fsync(fd)


def test_the_next_line_waits_for_the_previous_sync(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    disk = SlowDisk(path)
    journal = Journal(path, sync=disk)
    journal.append(step(1))  # returns at once: the sync runs in the helper thread
    assert disk.started.wait(10)
    second = threading.Thread(target=journal.append, args=(step(2),))
    second.start()
    second.join(0.3)
    assert second.is_alive() and len(lines(path)) == 1  # held until line 1 is durable
    disk.release.set()
    second.join(10)
    journal.close()
    assert len(lines(path)) == 2 and disk.seen == [1, 2]


def test_close_waits_for_the_last_sync(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    disk = SlowDisk(path)
    journal = Journal(path, sync=disk)
    journal.append(step(1))
    closing = threading.Thread(target=journal.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # the record must not go in before the step is durable
    disk.release.set()
    closing.join(10)
    assert not closing.is_alive()
    journal.append(step(2))  # after close (an abandoned loop): ignored, no new journal
    assert len(lines(path)) == 1


def test_a_step_after_the_run_is_recorded_is_neither_kept_nor_shown(home: Home) -> None:
    shown: list[Step] = []
    sink = StepLog(home, "e", shown.append)
    sink(step(1))
    sink.close()
    sink(step(2))  # a loop left running in an abandoned thread (a watch shutting down)
    assert sink.steps == shown == [step(1)]
    assert [s.input for s in read_steps(home, "e")] == [{"path": "notes/1.md"}]


def broken_disk(fd: int) -> None:
    raise OSError(5, "Input/output error")


def test_a_failed_sync_is_raised_at_the_next_append_and_at_close(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    journal = Journal(path, sync=broken_disk)
    journal.append(step(1))
    with pytest.raises(OSError) as caught:
        journal.append(step(2))
    assert caught.value.filename == str(path)
    assert "could not be synced: Input/output error" in str(caught.value)
    assert len(lines(path)) == 1  # nothing written after a line the disk may have lost
    again = Journal(tmp_path / "y.jsonl", sync=broken_disk)
    again.append(step(1))
    with pytest.raises(OSError, match="could not be synced"):
        again.close()


def test_a_line_separator_in_a_step_does_not_cut_the_journal(tmp_path: Path) -> None:
    home = Home(tmp_path)
    journal = Journal(journal_path(home, "e"))
    journal.append(step(1, "a\u2028b\x85c\u2029d"))  # str.splitlines() splits on these
    journal.append(step(2))
    journal.close()
    assert [s.output for s in read_steps(home, "e")] == ["a\u2028b\x85c\u2029d", "ok"]


@pytest.fixture
def fifo_journal(home: Home) -> Iterator[Path]:
    """The run's journal path made a FIFO, with a reader: write() works, every
    fsync/fdatasync of it fails for real (EINVAL)."""
    exec_id = execution_id("plan", utc_iso(START), 1)
    path = journal_path(home, exec_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield path
    finally:
        os.close(reader)
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("calls", [1, 2])
def test_a_run_whose_journal_cannot_sync_fails_loudly(
    home: Home,
    settings: Settings,  # noqa: F811
    api: FakeAnthropic,  # noqa: F811
    fifo_journal: Path,
    calls: int,
) -> None:
    # One call: the failure comes out when the run closes its journal, after the
    # answer; two: at the second step's append, so that step's result is never sent.
    api.queue(*[use("read_file", path="notes/inbox.md") for _ in range(calls)])
    api.queue(Reply(text="Done."))
    brain = AnthropicBrain(settings.brain)
    with pytest.raises(OSError) as caught:
        run_task(home, settings, "plan", brain, FakeClock(START))
    assert caught.value.filename == str(fifo_journal)
    (record,) = logs.read_log(home, "plan").executions
    assert record.status == "failed" and "could not be synced" in (record.error or "")
    assert len(api.message_requests) == 2


def test_a_run_failing_otherwise_keeps_its_own_error_when_its_journal_cannot_sync(
    home: Home,
    settings: Settings,  # noqa: F811
    api: FakeAnthropic,  # noqa: F811
    fifo_journal: Path,
) -> None:
    api.queue(use("read_file", path="notes/inbox.md"), Reply(status=400, message="no"))
    brain = AnthropicBrain(settings.brain)
    with pytest.raises(OSError, match="could not be synced") as caught:
        run_task(home, settings, "plan", brain, FakeClock(START))
    assert caught.value.filename == str(fifo_journal)
    (record,) = logs.read_log(home, "plan").executions
    # Recorded as what it was (not retryable), not left `running` to become `interrupted`.
    assert (record.status, record.error, record.retryable) == ("failed", "bad request: no", False)
    assert [s.tool for s in record.steps or ()] == ["read_file"]
    assert tasks.load_task(home, "plan").state.status == "failed"


def test_sigkill_after_the_write_before_its_sync_keeps_the_step(
    home: Home,
    settings: Settings,  # noqa: F811
    api: FakeAnthropic,  # noqa: F811
) -> None:
    api.queue(
        Reply(
            text="Writing.",
            tool_calls=[ToolCall("write_file", {"path": "plans/a.md", "content": "one\n"})],
        )
    )
    kill_at(home, "journal-after-write", "run", "plan")  # the sync never started
    (journal,) = (home.state / "runs").glob("*.jsonl")
    assert [json.loads(line)["tool"] for line in lines(journal)] == ["write_file"]
    api.queue(Reply(text="Finished."))
    done = cli(home, "run", "plan", env=api.env())
    assert done.returncode == 0, done.stderr
    first, second = logs.read_log(home, "plan").executions
    assert (first.status, first.error) == ("failed", "interrupted")
    assert [s.tool for s in first.steps or ()] == ["write_file"]
    assert second.status == "completed" and not journal.exists()
    assert "used write_file plans/a.md" in json.dumps(api.message_requests[-1].body["messages"])


def test_a_journal_write_that_fails_fails_the_run_and_the_record_keeps_the_step(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    """An I/O error half-way through the step's line (RUNNER_TEST_FAIL_WRITE): a clear
    error, the run recorded as failed with the call it made, the next run fine."""
    for n in range(1, 8):  # the n-th durable write of the run is the journal's
        home = Home(tmp_path / f"home{n}")
        init_home(home)
        home.settings_file.write_text("brain:\n  provider: anthropic\n  max_retries: 0\n")
        (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
        fake_anthropic.queue(use("write_file", path="plans/a.md", content="one\n"))
        fake_anthropic.queue(Reply(text="Done."))
        env = {**fake_anthropic.env(), "RUNNER_TEST_FAIL_WRITE": str(n)}
        done = cli(home, "run", "plan", env=env)
        if f"INJECTED {n} journal step" in done.stderr:
            break
    else:
        pytest.fail("no run reached the journal's write")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "runner: journal step: Input/output error (injected)" in done.stderr
    (record,) = logs.read_log(home, "plan").executions
    assert record.status == "failed" and "Input/output error" in (record.error or "")
    assert [(s.tool, s.subject) for s in record.steps or ()] == [("write_file", "plans/a.md")]
    assert not list((home.state / "runs").glob("*.jsonl"))  # recorded: the journal is gone
    fake_anthropic.queue(Reply(text="Again."))
    assert cli(home, "run", "plan", env=fake_anthropic.env()).returncode == 0
