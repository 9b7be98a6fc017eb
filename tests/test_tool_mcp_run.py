"""MCP servers in a run: started for the run whose task names them, their tools in the
loop as mcp__<server>__<tool>, stopped when the run ends; one that cannot start fails
the run retryably, naming it. Real stdio servers, the real SDK, the fake API."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.brain.anthropic_brain import AnthropicBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.run.executor import run_task
from runner.settings import Settings, load_settings
from tests.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.test_mcp import alive, configure, pids_in, stdio

TASK = """\
title: Echo
instructions: Ask the echo server.
tools:
  mcp: [echo]
"""


@pytest.fixture
def settings(
    home: Home, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    for name, value in fake_anthropic.env().items():
        monkeypatch.setenv(name, value)
    home.settings_file.write_text("brain:\n  provider: anthropic\n  timeout: 10s\n")
    (home.tasks / "echo.yaml").write_text(TASK, encoding="utf-8")
    return load_settings(home.settings_file)


def test_an_mcp_tool_in_the_loop_and_the_server_stopped_after(
    home: Home, settings: Settings, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    pidfile = tmp_path / "echo.pid"
    configure(home, echo=stdio("echo_server.py", "--pidfile", str(pidfile)))
    fake_anthropic.queue(
        Reply(text="", tool_calls=[ToolCall("mcp__echo__echo", {"text": "hi there"})]),
        Reply(text="It said hi."),
    )
    outcome = run_task(home, settings, "echo", AnthropicBrain(settings.brain), SystemClock())
    assert outcome.ok, outcome.record.error
    first, second = fake_anthropic.message_requests
    assert "mcp__echo__echo" in [t["name"] for t in first.body["tools"]]
    result = second.body["messages"][-1]["content"][0]
    assert (result["type"], result["content"]) == ("tool_result", "hi there")
    assert [s.tool for s in outcome.record.steps or ()] == ["mcp__echo__echo"]
    assert not alive(pids_in(pidfile)[0])  # stopped when the run ended


def test_a_server_that_cannot_start_fails_the_run_naming_it(
    home: Home, settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    configure(home, echo={"command": "/nonexistent/mcp-server"})
    outcome = run_task(home, settings, "echo", AnthropicBrain(settings.brain), SystemClock())
    assert outcome.status == "failed"
    assert "echo" in (outcome.record.error or "")
    assert outcome.record.may_retry  # retryable (SPEC)
    assert fake_anthropic.message_requests == []  # no tokens spent
