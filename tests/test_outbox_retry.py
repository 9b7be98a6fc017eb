"""A notification whose send failed (the receiver is down, answers an error or hangs)
stays in the outbox and is tried again later, to the targets that failed only, a
bounded number of times; a clock set back does not strand it; an outbox that cannot
be written does not cost the message. The real CLI and Apprise, local receivers."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from runner.deliver import outbox
from runner.deliver.message import Report
from runner.delivery_settings import TargetSettings, UrlSource
from runner.home import Home
from runner.run.delivery import flush_outbox
from runner.settings import Settings
from runner.tasks.delivery import Delivery
from tests.conftest import cli
from tests.fakes import FakeClock
from tests.receiver import Receiver
from tests.test_outbox import left_in_outbox, notifying


def settings_for(**receivers: Receiver) -> Settings:
    targets = {
        name: TargetSettings(name, UrlSource(url=r.url()), timeout=1.0)
        for name, r in receivers.items()
    }
    return Settings(notify=targets)


def put(home: Home, *targets: str) -> None:
    report = Report("plan", "Daily plan", "failed", None, "the error")
    outbox.put(home, "e1", report, Delivery(notify=targets, notify_on=("failed",)))


@pytest.mark.parametrize("trouble", ["error", "hang"])
def test_a_send_that_fails_is_kept_and_tried_again_later(
    home: Home, receiver: Receiver, trouble: str
) -> None:
    notifying(home, receiver)
    home.settings_file.write_text(
        f"notify:\n  phone: {{url: '{receiver.url()}', timeout: 1s}}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )
    receiver.status, receiver.hang = (500, False) if trouble == "error" else (200, True)
    ran = cli(home, "run", "plan")
    assert ran.returncode == 0, ran.stderr  # a failed send never changes the run's status
    assert "notification to phone not sent" in ran.stderr
    assert len(receiver.requests) == 1
    assert len(left_in_outbox(home)) == 1  # kept, not lost after one failed send
    receiver.status, receiver.hang = 200, False
    assert cli(home, "tick").returncode == 0  # too soon: it waits its turn
    assert len(receiver.requests) == 1
    later = FakeClock(datetime.now(UTC) + timedelta(minutes=2))
    warnings: list[str] = []
    settings = settings_for(phone=receiver)
    flush_outbox(home, settings, later, warnings.append)
    [_, again] = receiver.wait_for(2)
    assert again.body is not None and again.body["title"] == "Daily plan: completed"
    assert left_in_outbox(home) == []
    assert warnings == []


def test_tries_are_bounded_and_giving_up_is_said(home: Home, receiver: Receiver) -> None:
    receiver.status = 500
    put(home, "phone")
    clock = FakeClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    warnings: list[str] = []
    for _ in range(10):
        flush_outbox(home, settings_for(phone=receiver), clock, warnings.append)
        clock.advance(3 * 3600)
    assert len(receiver.requests) == outbox.MAX_SENDS
    assert left_in_outbox(home) == []
    assert any("given up" in w for w in warnings), warnings


def test_only_the_targets_that_failed_are_tried_again(home: Home) -> None:
    up, down = Receiver(), Receiver()
    try:
        down.status = 500
        put(home, "up", "down")
        clock = FakeClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
        settings = settings_for(up=up, down=down)
        flush_outbox(home, settings, clock, lambda m: None)
        assert (len(up.requests), len(down.requests)) == (1, 1)
        down.status = 200
        clock.advance(30)
        flush_outbox(home, settings, clock, lambda m: None)  # not due yet
        assert len(down.requests) == 1
        clock.advance(60)
        flush_outbox(home, settings, clock, lambda m: None)
        assert (len(up.requests), len(down.requests)) == (1, 2)
        assert left_in_outbox(home) == []
    finally:
        up.stop()
        down.stop()


def test_a_clock_set_back_does_not_strand_a_kept_notification(
    home: Home, receiver: Receiver
) -> None:
    receiver.status = 500
    put(home, "phone")
    clock = FakeClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    settings = settings_for(phone=receiver)
    flush_outbox(home, settings, clock, lambda m: None)
    receiver.status = 200
    clock.jump(-30 * 24 * 3600)  # the clock was a month fast, and is corrected
    flush_outbox(home, settings, clock, lambda m: None)
    assert len(receiver.wait_for(2)) == 2
    assert left_in_outbox(home) == []


def test_an_outbox_that_cannot_be_written_does_not_cost_the_message(
    home: Home, receiver: Receiver
) -> None:
    notifying(home, receiver)
    home.state.mkdir(parents=True, exist_ok=True)
    outbox.outbox(home).write_text("in the way\n")  # a file where the folder should be
    ran = cli(home, "run", "plan")
    assert ran.returncode == 0, ran.stderr
    assert "notification not kept" in ran.stderr
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert os.path.isfile(outbox.outbox(home))


def test_a_watch_tries_a_kept_notification_again_when_it_is_due(
    home: Home, receiver: Receiver
) -> None:
    from runner.events import Event
    from runner.watch.daemon import Watch

    receiver.status = 500
    put(home, "phone")
    clock = FakeClock(datetime.now(UTC))
    settings = settings_for(phone=receiver)
    flush_outbox(home, settings, clock, lambda m: None)  # failed: kept for a minute
    receiver.status = 200
    events: list[Event] = []
    watch = Watch(home, settings, clock, events.append)
    seen: list[int] = []

    def drive() -> None:
        try:
            time.sleep(3)  # the watch has started and looked once: too soon
            seen.append(len(receiver.requests))
            clock.advance(120)
            seen.append(len(receiver.wait_for(2, timeout=15)))
        finally:
            watch.stop()

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    assert watch.run() == 0  # signals: the watch runs on the main thread
    driver.join(30)
    assert seen == [1, 2]
    assert left_in_outbox(home) == []
