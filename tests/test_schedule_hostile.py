"""A careless or hostile hand at `schedule:` (QA of issue 15, part 6): a task whose
key cannot be a key, two scheduled tasks sharing one key, a quoted `schedule` key.
None of them may stop `tick`, and none may silently never fire."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.brain.offline import OfflineBrain
from runner.home import Home
from runner.logs import store as logs
from runner.run.tick import tick
from runner.settings import Settings

from .conftest import cli
from .fakes import FakeClock

DAILY = "schedule: {rrule: FREQ=DAILY, at: '09:00', tz: UTC}\n"


def write_task(home: Home, name: str, text: str) -> None:
    (home.tasks / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("My Task", "instructions: x\n" + DAILY),  # the id is no key
        ("reserved", "instructions: x\nkey: archive\n" + DAILY),  # a reserved key
        ("spaced", "instructions: x\nkey: 'a b'\n" + DAILY),  # not the file name instead
    ],
)
def test_a_scheduled_task_with_a_bad_key_is_its_own_problem(
    home: Home, name: str, text: str
) -> None:
    write_task(home, name, text)
    write_task(home, "good", "instructions: y\n" + DAILY)
    clock = FakeClock(datetime(2026, 11, 25, 9, 0, 30, tzinfo=UTC))
    result = tick(home, Settings(), OfflineBrain(), clock)
    assert [o.task_id for o in result.outcomes] == ["good/20261125T090000Z"]
    assert not (home.tasks / "archive").exists() and not (home.tasks / "My Task").exists()
    assert not (home.tasks / "spaced").exists()
    run = cli(home, "tick")  # the CLI goes on too: a broken neighbour is no usage error
    assert run.returncode != 2 and "runner: invalid key" not in run.stderr, run.stderr


def test_two_scheduled_tasks_sharing_a_key_are_a_problem(home: Home) -> None:
    write_task(home, "a", "instructions: I am a\nkey: shared\n" + DAILY)
    write_task(home, "b", "instructions: I am b\nkey: shared\n" + DAILY)
    result = cli(home, "check")
    assert result.returncode == 1
    assert "b.yaml:2: " in result.stdout and "a.yaml" in result.stdout, result.stdout


def test_a_quoted_schedule_key_fires(home: Home) -> None:
    write_task(
        home, "quoted", 'instructions: x\n"schedule": {rrule: FREQ=DAILY, at: "09:00", tz: UTC}\n'
    )
    clock = FakeClock(datetime(2026, 11, 25, 9, 0, 30, tzinfo=UTC))
    tick(home, Settings(), OfflineBrain(), clock)
    assert [r.task for r in logs.read_log(home, "quoted").executions] == ["quoted/20261125T090000Z"]
