"""A notification another process already sent is not sent again when recovery
decides it a second time: a run that dies after keeping its notification but before
its final state, while a `tick` beside it sends what it kept. Real processes,
SIGKILL at a pause point, the real Apprise library, a local receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from runner.home import Home
from tests.conftest import cli
from tests.receiver import Receiver
from tests.test_outbox import left_in_outbox, notifying


def test_a_notification_sent_beside_a_run_that_then_dies_is_not_sent_again(
    home: Home, receiver: Receiver
) -> None:
    notifying(home, receiver)
    point = "executor-after-output"  # record, output and the kept notification written
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--home", str(home.root), "run", "plan"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNNER_TEST_PAUSE": point},
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.strip() == f"PAUSED {point}":
                break
        assert len(left_in_outbox(home)) == 1
        ticked = cli(home, "tick")  # beside the live run: sends what it kept
        assert ticked.returncode == 0, ticked.stderr
        assert len(receiver.wait_for(1)) == 1
        os.kill(proc.pid, signal.SIGKILL)  # then the run dies before its final state
    finally:
        proc.wait(timeout=30)
    listed = cli(home, "list")  # recovery decides the notification again
    assert "state repaired from its log" in listed.stderr
    assert cli(home, "tick").returncode == 0
    assert cli(home, "run", "plan").returncode == 0  # a new run: told, once
    assert len(receiver.wait_for(2)) == 2
    assert len(receiver.requests) == 2
    assert left_in_outbox(home) == []


def test_marks_of_sent_notifications_are_kept_a_week(home: Home, receiver: Receiver) -> None:
    from runner.clock import SystemClock
    from runner.deliver import outbox
    from runner.deliver.message import Report
    from runner.delivery_settings import TargetSettings, UrlSource
    from runner.run.delivery import flush_outbox
    from runner.settings import Settings
    from runner.tasks.delivery import Delivery

    marks = outbox.sent_marks(home)
    marks.mkdir(parents=True)
    (marks / "old").write_text("{}")
    (marks / "new").write_text("{}")
    week_ago = time.time() - outbox.KEEP_SENT - 60
    os.utime(marks / "old", (week_ago, week_ago))
    report = Report("plan", "Daily plan", "completed", None, "the answer")
    outbox.put(home, "e1", report, Delivery(notify=("phone",), notify_on=("completed",)))
    settings = Settings(notify={"phone": TargetSettings("phone", UrlSource(url=receiver.url()))})
    flush_outbox(home, settings, SystemClock(), lambda m: None)
    assert len(receiver.wait_for(1)) == 1
    assert sorted(os.listdir(marks)) == ["e1", "new"]
    outbox.put(home, "e1", report, Delivery(notify=("phone",), notify_on=("completed",)))
    assert left_in_outbox(home) == []  # sent already: not kept again


def test_many_processes_flushing_one_outbox_send_each_entry_once(
    home: Home, receiver: Receiver
) -> None:
    """A `watch`, four `tick`s and a `runner run` started together on one home, with
    twenty entries waiting: every entry reaches the receiver once, the run's too."""
    from runner.deliver import outbox
    from runner.deliver.message import Report
    from runner.tasks.delivery import Delivery
    from tests.test_watch_e2e import WatchProcess

    notifying(home, receiver)
    for n in range(20):
        report = Report(f"t{n}", f"Entry {n}", "completed", None, "the answer")
        delivery = Delivery(notify=("phone",), notify_on=("completed",))
        outbox.put(home, f"e{n}", report, delivery)
    command = [sys.executable, "-m", "runner", "--home", str(home.root)]
    watching = WatchProcess(home)  # flushes at its start, as the others do
    procs = [
        subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for args in (["tick"], ["tick"], ["run", "plan"], ["tick"], ["tick"])
    ]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        watching.wait_for("started", timeout=60)
        received = receiver.wait_for(21)
        time.sleep(2)  # a send twice would arrive by now
    finally:
        assert watching.stop() == 0
    titles = sorted(r.body["title"] for r in received if r.body is not None)
    assert len(receiver.requests) == 21
    expected = sorted([f"Entry {n}: completed" for n in range(20)] + ["Daily plan: completed"])
    assert titles == expected  # each once
    assert left_in_outbox(home) == []
