"""`schedule:` in a hand-written task: a weekly task without a calendar server
(SPEC "Scheduling rules"). Its occurrences fire like a local calendar's events, under
the task's own key, with the same stamps, catch-up and claims."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from runner.brain.offline import OfflineBrain
from runner.home import Home
from runner.logs import store as logs
from runner.run.tick import tick
from runner.schedule.cache import load_calendars
from runner.schedule.expand import occurrences_between
from runner.settings import Settings
from runner.tasks import files as tasks
from tests.fakes import FakeClock

from .conftest import cli

WEEKLY = """\
title: Weekly review
instructions: |
  List the three most important open items.
schedule:
  rrule: "FREQ=WEEKLY;BYDAY=MO,WE"
  at: "09:00"
  tz: Europe/Berlin
"""


def write_task(home: Home, name: str, text: str) -> None:
    (home.tasks / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_occurrences_follow_the_rule_in_its_zone(home: Home) -> None:
    write_task(home, "review", WEEKLY)
    calendars = load_calendars(home, Settings())
    start = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    found = occurrences_between(calendars, start, start + timedelta(days=7))
    # 09:00 in Berlin is 08:00 UTC in winter; Monday and Wednesday.
    assert [o.fire_at for o in found] == [
        datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
    ]
    assert {o.series_key for o in found} == {"review"}
    assert [o.task_id for o in found] == ["review/20261123T080000Z", "review/20261125T080000Z"]
    assert {o.calendar for o in found} == {"schedule"}


def test_summer_time_keeps_the_local_hour(home: Home) -> None:
    write_task(home, "review", WEEKLY)
    calendars = load_calendars(home, Settings())
    start = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday in summer time
    found = occurrences_between(calendars, start, start + timedelta(days=1))
    assert [o.fire_at for o in found] == [datetime(2026, 6, 1, 7, 0, tzinfo=UTC)]


def test_tick_runs_it_once_under_the_tasks_key(home: Home) -> None:
    write_task(home, "review", WEEKLY.replace("title:", "key: weekly\ntitle:"))
    clock = FakeClock(datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC))
    settings = Settings(grace=3 * 86400.0)
    first = tick(home, settings, OfflineBrain(), clock)
    assert [o.task_id for o in first.outcomes] == ["weekly/20261125T080000Z"]
    assert first.ok and first.skipped == ("weekly/20261123T080000Z",)  # catch_up latest
    task = tasks.load_task(home, "weekly/20261125T080000Z")
    assert task.key == "weekly" and task.state.status == "completed"
    assert task.instructions.startswith("List the three most important open items.")
    records = logs.read_log(home, "weekly").executions
    assert [r.task for r in records] == ["weekly/20261125T080000Z"]
    clock.advance(60)
    again = tick(home, settings, OfflineBrain(), clock)
    assert again.outcomes == () and again.problems == ()
    assert len(logs.read_log(home, "weekly").executions) == 1


def test_next_shows_it_and_a_warm_cache_agrees(home: Home) -> None:
    write_task(home, "review", WEEKLY)
    runs = [cli(home, "next", "--days", "14", "--json") for _ in range(2)]  # cold, warm
    docs = [json.loads(r.stdout) for r in runs]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert docs[0]["occurrences"] == docs[1]["occurrences"]
    rows = docs[0]["occurrences"]
    assert rows and {row["series_key"] for row in rows} == {"review"}
    assert {row["calendar"] for row in rows} == {"schedule"}


@pytest.mark.parametrize(
    ("schedule", "line", "message"),
    [
        ('  rrule: "FREQ=MINUTELY;INTERVAL=0"\n  at: "09:00"\n  tz: UTC\n', 5, "INTERVAL"),
        ('  rrule: "BYDAY=MO"\n  at: "09:00"\n  tz: UTC\n', 5, "FREQ"),
        ('  rrule: "FREQ=DAILY"\n  at: "25:00"\n  tz: UTC\n', 6, "time of day"),
        ('  rrule: "FREQ=DAILY"\n  at: "09:00"\n  tz: Mars/Olympus\n', 7, "unknown time zone"),
        ('  rrule: "FREQ=DAILY"\n  at: "09:00"\n  tz: UTC\n  every: 2\n', 8, "unknown key"),
        ('  rrule: "FREQ=DAILY"\n  tz: UTC\n', 4, "needs 'at'"),
    ],
)
def test_check_names_a_bad_schedule_by_file_and_line(
    home: Home, schedule: str, line: int, message: str
) -> None:
    write_task(home, "bad", "title: Bad\ninstructions: x\nkey: bad\nschedule:\n" + schedule)
    write_task(home, "good", WEEKLY)
    result = cli(home, "check")
    assert result.returncode == 1
    assert f"bad.yaml:{line}: " in result.stdout and message in result.stdout, result.stdout
    assert "good.yaml" not in result.stdout
    listing = cli(home, "list")  # a broken neighbour never stops the rest
    assert listing.returncode == 0 and "good" in listing.stdout


def test_a_rule_that_never_fires_is_a_problem_at_its_line(home: Home) -> None:
    write_task(
        home,
        "never",
        "instructions: x\nschedule:\n  rrule: FREQ=DAILY;UNTIL=20250101T000000Z\n"
        '  at: "09:00"\n  tz: UTC\n',
    )
    result = cli(home, "check")
    assert result.returncode == 1
    assert "never.yaml:3: schedule.rrule: " in result.stdout, result.stdout
    assert "never fires" in result.stdout


def test_schedule_is_refused_in_an_occurrence_file(home: Home) -> None:
    folder = home.tasks / "series-1234abcd"
    folder.mkdir()
    (folder / "20261125T080000Z.yaml").write_text(
        "instructions: x\nschedule: {rrule: FREQ=DAILY, at: '09:00', tz: UTC}\n", encoding="utf-8"
    )
    result = cli(home, "check")
    assert "20261125T080000Z.yaml:2: 'schedule' belongs in a hand-written task" in result.stdout


def test_an_edit_to_the_rule_is_seen_by_the_next_pass(home: Home) -> None:
    write_task(home, "review", WEEKLY)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    assert (
        len(occurrences_between(load_calendars(home, Settings()), start, start + timedelta(7))) == 2
    )
    write_task(home, "review", WEEKLY.replace("BYDAY=MO,WE", "BYDAY=MO,WE,FR"))
    assert (
        len(occurrences_between(load_calendars(home, Settings()), start, start + timedelta(7))) == 3
    )
