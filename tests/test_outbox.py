"""A notification decided but not sent when the process died is sent by the next
command, once (deliver/outbox.py). Real processes SIGKILLed at the pause points, the
real Apprise library, a local receiver."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.clock import SystemClock
from runner.deliver import outbox
from runner.deliver.message import Report
from runner.delivery_settings import TargetSettings, UrlSource
from runner.home import Home
from runner.run.delivery import flush_outbox
from runner.settings import Settings
from runner.tasks.delivery import Delivery
from tests.conftest import cli, kill_at
from tests.fakes import write_ics
from tests.receiver import Receiver
from tests.test_tick import event
from tests.test_watch_e2e import WatchProcess, watch  # noqa: F401


def notifying(home: Home, receiver: Receiver) -> None:
    home.settings_file.write_text(
        f"notify:\n  phone: {{url: '{receiver.url()}'}}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )
    (home.tasks / "plan.yaml").write_text(
        "title: Daily plan\ninstructions: Plan the day.\nnotify_on: [completed]\n",
        encoding="utf-8",
    )


def left_in_outbox(home: Home) -> list[str]:
    folder = outbox.outbox(home)
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_a_run_killed_before_its_notification_is_told_by_the_next_command(
    home: Home, receiver: Receiver
) -> None:
    notifying(home, receiver)
    kill_at(home, "run-before-notify", "run", "plan")  # record, output, state: all written
    assert receiver.requests == []
    assert len(left_in_outbox(home)) == 1
    ticked = cli(home, "tick")
    assert ticked.returncode == 0, ticked.stderr
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert left_in_outbox(home) == []
    assert cli(home, "tick").returncode == 0
    assert len(receiver.requests) == 1  # once: nothing doubled


def test_a_run_killed_between_its_record_and_its_state_is_told_after_recovery(
    home: Home, receiver: Receiver
) -> None:
    notifying(home, receiver)
    kill_at(home, "executor-after-append", "run", "plan")
    assert receiver.requests == []
    listed = cli(home, "list")  # recovers the task from its record; sends nothing
    assert "state repaired from its log" in listed.stderr
    assert receiver.requests == []
    assert cli(home, "tick").returncode == 0
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert cli(home, "tick").returncode == 0
    assert len(receiver.requests) == 1
    assert left_in_outbox(home) == []


def test_a_tick_killed_before_it_notifies_leaves_it_to_the_next_tick(
    home: Home, receiver: Receiver
) -> None:
    notifying(home, receiver)
    now = datetime.now(UTC).replace(microsecond=0)
    write_ics(
        home, "d.ics", event("uid-1", now - timedelta(seconds=20), extra="DESCRIPTION:task: plan")
    )
    kill_at(home, "series-before-notify", "tick")
    assert receiver.requests == []
    assert cli(home, "tick").returncode == 0  # runs nothing again; sends the leftover
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Job: completed"
    assert cli(home, "tick").returncode == 0
    assert len(receiver.requests) == 1
    records = (home.logs).glob("*.jsonl")
    assert sum(len(p.read_text().splitlines()) for p in records) == 1  # ran once


def _entry(home: Home, name: str) -> None:
    report = Report("plan", "Daily plan", "completed", None, "the answer")
    outbox.put(home, name, report, Delivery(notify=("phone",), notify_on=("completed",)))


def test_two_flushers_send_a_leftover_once_and_a_dead_claim_is_taken_back(
    home: Home, receiver: Receiver
) -> None:
    target = TargetSettings("phone", UrlSource(url=receiver.url()), timeout=5.0)
    settings = Settings(notify={"phone": target})
    _entry(home, "a1")
    _entry(home, "b2")  # claimed by a process that is gone (pid beyond any pid_max)
    folder = outbox.outbox(home)
    os.rename(folder / "b2.json", folder / "b2.json.4294967.sending")
    _entry(home, "c3")  # claimed by a live process (this one's parent): left alone
    os.rename(folder / "c3.json", folder / f"c3.json.{os.getppid()}.sending")
    warnings: list[str] = []
    barrier = threading.Barrier(4)

    def flush() -> None:
        barrier.wait()
        flush_outbox(home, settings, SystemClock(), warnings.append)

    threads = [threading.Thread(target=flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(receiver.wait_for(2)) == 2
    assert len(receiver.requests) == 2  # a1 and b2, each once
    assert left_in_outbox(home) == [f"c3.json.{os.getppid()}.sending"]
    assert warnings == []


def test_a_damaged_entry_is_dropped_not_a_crash(home: Home, receiver: Receiver) -> None:
    folder = outbox.outbox(home)
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text("{not json", encoding="utf-8")
    (folder / "odd.json").write_text('{"report": [], "delivery": 3}', encoding="utf-8")
    Path(folder / "ignored.txt").write_text("not an entry", encoding="utf-8")
    sent = flush_outbox(home, Settings(), SystemClock(), lambda m: None)
    assert sent == []
    assert left_in_outbox(home) == ["ignored.txt"]
    assert receiver.requests == []


def test_a_watch_sends_what_a_dead_run_left_at_its_start(
    home: Home,
    receiver: Receiver,
    watch: Callable[..., WatchProcess],  # noqa: F811
) -> None:
    notifying(home, receiver)
    kill_at(home, "run-before-notify", "run", "plan")
    assert receiver.requests == []
    process = watch()
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert process.stop() == 0
    assert left_in_outbox(home) == []


def test_a_last_try_that_died_is_told_as_the_final_failure_once(
    home: Home, receiver: Receiver
) -> None:
    home.settings_file.write_text(
        f"retries: 0\nnotify:\n  phone: {{url: '{receiver.url()}'}}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )
    now = datetime.now(UTC).replace(microsecond=0)
    write_ics(home, "d.ics", event("uid-1", now - timedelta(seconds=20)))
    kill_at(home, "executor-before-brain", "tick")  # its only try dies mid-run
    assert receiver.requests == []
    ticked = cli(home, "tick")  # recovers it as interrupted: no retry is left
    assert ticked.returncode == 0, ticked.stderr
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Job: failed"
    assert "interrupted" in message.body["message"]
    for _ in range(2):
        assert cli(home, "tick").returncode == 0
    assert len(receiver.requests) == 1
    [log] = home.logs.glob("*.jsonl")
    assert len(log.read_text().splitlines()) == 1  # the interrupted record; never run again
