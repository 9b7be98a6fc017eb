"""Delivery from `tick` (the watch loop's engine), in-process with a FakeClock and the
real Apprise library posting to a local receiver: a failure notifies once, after its
last retry; skipped occurrences when asked; output files of occurrences."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runner import keys
from runner.clock import local_zone
from runner.delivery_settings import TargetSettings, UrlSource
from runner.home import Home
from runner.settings import Settings
from tests.fakes import FakeClock, RecordingBrain, ics_time, write_ics
from tests.receiver import Receiver
from tests.test_tick import NOW, event, executions, flaky_brain, run_tick


def with_target(receiver: Receiver, **kw: object) -> Settings:
    target = TargetSettings("phone", UrlSource(url=receiver.url()), timeout=5.0)
    return Settings(notify={"phone": target}, notify_default=("phone",), **kw)  # type: ignore[arg-type]


def daily_task(home: Home, extra: str) -> None:
    text = f"title: Daily plan\ninstructions: Plan the day.\n{extra}"
    (home.tasks / "daily.yaml").write_text(text, encoding="utf-8")


def test_a_failure_notifies_exactly_once_after_the_last_retry(
    home: Home, receiver: Receiver
) -> None:
    daily_task(home, "notify_on: [failed]\n")
    write_ics(home, "d.ics", event("uid-1", NOW, extra="DESCRIPTION:task: daily"))
    settings = with_target(receiver, retries=2)
    brain = flaky_brain(failures=99)
    clock = FakeClock(NOW + timedelta(seconds=5))
    first = run_tick(home, clock, settings, brain=brain)
    assert [o.status for o in first.outcomes] == ["failed"]
    assert receiver.requests == []  # two retries to go: nobody is told yet
    clock.advance(40)  # past the first retry (30 s ± 20 %)
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == ["failed"]
    assert receiver.requests == []
    clock.advance(80)  # past the second retry (60 s ± 20 %)
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == ["failed"]
    [message] = receiver.wait_for(1)
    for _ in range(3):  # no more tries, and no more messages
        clock.advance(600)
        assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    assert len(executions(home, "uid-1")) == 3
    assert len(receiver.requests) == 1
    assert message.body is not None
    assert message.body["title"] == "Job: failed"
    assert message.body["type"] == "failure"
    lines = message.body["message"].splitlines()
    assert lines[0].endswith("· after 3 attempts")
    assert "overloaded" in lines
    assert f"task: {keys.series_key('uid-1')}/{ics_time(NOW)}" in lines


def test_a_failure_not_worth_retrying_notifies_at_once(home: Home, receiver: Receiver) -> None:
    daily_task(home, "")
    write_ics(home, "d.ics", event("uid-2", NOW, extra="DESCRIPTION:task: daily"))
    clock = FakeClock(NOW + timedelta(seconds=5))
    brain = flaky_brain(failures=99, retryable=False)
    run_tick(home, clock, with_target(receiver), brain=brain)
    assert len(receiver.wait_for(1)) == 1


def test_a_failure_whose_retry_falls_past_grace_is_final(home: Home, receiver: Receiver) -> None:
    daily_task(home, "")
    write_ics(home, "d.ics", event("uid-3", NOW, extra="DESCRIPTION:task: daily"))
    settings = with_target(receiver, grace=20.0)  # the first retry (≥ 24 s) is too late
    run_tick(home, FakeClock(NOW + timedelta(seconds=5)), settings, brain=flaky_brain(99))
    assert len(receiver.wait_for(1)) == 1


def test_skipped_occurrences_notify_when_asked(home: Home, receiver: Receiver) -> None:
    daily_task(home, "notify_on: [skipped]\n")
    start = NOW - timedelta(hours=2)
    write_ics(
        home, "h.ics", event("uid-4", start, extra="RRULE:FREQ=HOURLY\nDESCRIPTION:task: daily")
    )
    result = run_tick(home, FakeClock(NOW + timedelta(seconds=5)), with_target(receiver))
    assert len(result.skipped) == 2 and [o.status for o in result.outcomes] == ["completed"]
    messages = receiver.wait_for(2)
    assert len(messages) == 2
    for message in messages:
        assert message.body is not None
        assert message.body["title"] == "Job: skipped"
        assert message.body["type"] == "warning"


def test_an_occurrence_writes_its_output_with_every_placeholder(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    daily_task(home, "output: 'plans/{date}/{series}/{stamp}.md'\n")
    # 23:30 UTC on the 26th is the 27th in Berlin: {date} is the local date.
    late = NOW.replace(hour=23, minute=30)
    write_ics(home, "d.ics", event("uid-5", late, extra="DESCRIPTION:task: daily"))
    clock = FakeClock(late + timedelta(seconds=5))
    monkeypatch.setenv("TZ", "Europe/Berlin")
    local_zone.cache_clear()
    try:
        run_tick(home, clock, Settings())
    finally:
        local_zone.cache_clear()
    key = keys.series_key("uid-5")
    path = home.root / "plans" / "2026-11-27" / key / f"{ics_time(late)}.md"
    [record] = executions(home, "uid-5")
    assert record.output == str(path.relative_to(home.root))
    assert path.read_text(encoding="utf-8") == record.response


def test_a_retried_occurrence_replaces_its_own_file(home: Home) -> None:
    daily_task(home, "output: 'out/{task}.md'\n")
    write_ics(home, "d.ics", event("uid-6", NOW, extra="DESCRIPTION:task: daily"))
    clock = FakeClock(NOW + timedelta(seconds=5))
    brain = flaky_brain(failures=1)
    run_tick(home, clock, Settings(), brain=brain)
    task_id = f"{keys.series_key('uid-6')}/{ics_time(NOW)}"
    path = home.root / "out" / f"{task_id}.md"
    assert not path.exists()  # a failed attempt writes no output
    clock.advance(40)
    run_tick(home, clock, Settings(), brain=brain)
    records = executions(home, "uid-6")
    assert [r.status for r in records] == ["failed", "completed"]
    assert "output" not in records[0].to_json() and records[1].output == f"out/{task_id}.md"
    assert path.read_text(encoding="utf-8") == records[1].response
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_an_output_symlinked_out_of_the_home_is_refused_at_run_time(
    home: Home, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (home.root / "plans").symlink_to(outside)
    daily_task(home, "output: 'plans/{date}.md'\n")
    write_ics(home, "d.ics", event("uid-7", NOW, extra="DESCRIPTION:task: daily"))
    result = run_tick(home, FakeClock(NOW + timedelta(seconds=5)), Settings())
    assert [o.status for o in result.outcomes] == ["completed"]  # the run itself is fine
    assert list(outside.iterdir()) == []


def test_a_scheduled_task_delivers_like_an_event_pointing_at_it(
    home: Home, receiver: Receiver
) -> None:
    daily_task(
        home,
        "schedule: {rrule: 'FREQ=DAILY', at: '12:00', tz: UTC}\n"
        "output: 'plans/{date}.md'\nnotify_on: [completed]\n",
    )
    result = run_tick(home, FakeClock(NOW + timedelta(seconds=5)), with_target(receiver))
    assert [o.status for o in result.outcomes] == ["completed"]
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert "output: plans/2026-11-26.md" in message.body["message"].splitlines()
    assert (home.root / "plans" / "2026-11-26.md").is_file()


def _first_try_failed(
    home: Home, receiver: Receiver, failures: int
) -> tuple[Settings, RecordingBrain, FakeClock]:
    """An occurrence whose first try failed, with two retries and ten minutes of grace."""
    daily_task(home, "notify_on: [failed]\n")
    write_ics(home, "d.ics", event("uid-1", NOW, extra="DESCRIPTION:task: daily"))
    settings = with_target(receiver, retries=2, grace=600)
    brain = flaky_brain(failures=failures)
    clock = FakeClock(NOW + timedelta(seconds=5))
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == ["failed"]
    return settings, brain, clock


def test_a_failure_whose_retry_never_came_is_told_once_grace_has_passed(
    home: Home, receiver: Receiver
) -> None:
    # The laptop failed a run, then slept past `grace`: the retry can no longer
    # happen, so the failure is told at wake-up instead of never.
    settings, brain, clock = _first_try_failed(home, receiver, failures=99)
    clock.advance(300)  # awake, within grace: it would retry now; nothing told yet
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == ["failed"]
    assert receiver.requests == []
    clock.advance(3600)  # asleep past grace: no retry can come any more
    assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Job: failed"
    assert "not retried" in message.body["message"]
    assert "after 2 attempts" in message.body["message"]
    clock.advance(3600)
    assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    assert len(receiver.requests) == 1
    assert len(executions(home, "uid-1")) == 2


def test_a_retry_that_completes_drops_the_failure_kept_for_later(
    home: Home, receiver: Receiver
) -> None:
    settings, brain, clock = _first_try_failed(home, receiver, failures=1)
    clock.advance(60)
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == [
        "completed"
    ]
    clock.advance(7200)  # long past grace: nothing is told about the first failure
    assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    assert receiver.requests == []


def test_a_kept_failure_whose_retry_is_in_the_log_is_dropped_not_told(
    home: Home, receiver: Receiver
) -> None:
    # A retry that died after its record, before it could drop the kept failure
    # (simulated: the entry is put back): the log says it was retried, so no
    # false "not retried" message goes out.
    settings, brain, clock = _first_try_failed(home, receiver, failures=1)
    [kept] = (home.state / "outbox").iterdir()
    saved = kept.read_bytes()
    clock.advance(60)
    assert [o.status for o in run_tick(home, clock, settings, brain=brain).outcomes] == [
        "completed"
    ]
    assert not kept.exists()
    kept.write_bytes(saved)
    clock.advance(7200)
    assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    assert receiver.requests == []
    assert not kept.exists()
