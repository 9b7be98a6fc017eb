"""A failure that is final is kept in the outbox before the run's final state, as a
completed run's notification is: a process killed right after writing the `failed`
state still has its failure told by the next command. Real processes SIGKILLed at a
pause point, the real SDK failing against a closed local port, the real Apprise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runner.home import Home
from tests.conftest import cli, kill_at
from tests.fakes import write_ics
from tests.receiver import Receiver
from tests.test_outbox import left_in_outbox
from tests.test_tick import event


def failing(home: Home, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    home.settings_file.write_text(
        "brain: {provider: anthropic, max_retries: 0, timeout: 5s}\nretries: 0\n"
        f"notify:\n  phone: {{url: '{receiver.url()}'}}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )
    (home.tasks / "plan.yaml").write_text(
        "title: Daily plan\ninstructions: Plan the day.\nnotify_on: [failed]\n", encoding="utf-8"
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # nothing listens


@pytest.mark.parametrize("command", ["run", "tick"])
def test_a_final_failure_is_told_though_the_process_died_after_its_state(
    home: Home, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    failing(home, receiver, monkeypatch)
    if command == "run":
        kill_at(home, "executor-after-state", "run", "plan")
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        write_ics(
            home,
            "d.ics",
            event("uid-1", now - timedelta(seconds=20), extra="DESCRIPTION:task: plan"),
        )
        kill_at(home, "executor-after-state", "tick")
    assert receiver.requests == []
    ticked = cli(home, "tick")
    assert ticked.returncode == 0, ticked.stderr
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"].endswith(": failed")
    assert cli(home, "tick").returncode == 0
    assert len(receiver.requests) == 1
    assert left_in_outbox(home) == []
