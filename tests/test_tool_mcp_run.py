"""MCP servers in a run: started for the run whose task names them, their tools in the
loop as mcp__<server>__<tool>, stopped when the run ends; one that cannot start fails
the run retryably, naming it. Real stdio servers, the real SDK, the fake API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from runner.brain.anthropic_brain import AnthropicBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.run.executor import run_task
from runner.settings import Settings, load_settings
from runner.tools import mcpprocs
from tests.conftest import cli
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


CLOCK_TASK = """\
title: What time is it in Tokyo
instructions: Ask the time server for the time in Tokyo.
tools:
  mcp: [time]
"""


def test_runner_run_offers_the_time_servers_tools_and_calls_one(
    home: Home, fake_anthropic: FakeAnthropic
) -> None:
    """A full `runner run` in its own process, the real SDK against the fake API, the
    published mcp-server-time over stdio: the task's grant reaches the model as tools,
    the scripted tool_use is answered by the server, and no server process remains."""
    configure(home, time={"command": sys.executable, "args": ["-m", "mcp_server_time"]})
    home.settings_file.write_text("brain:\n  provider: anthropic\n  timeout: 30s\n")
    (home.tasks / "clock.yaml").write_text(CLOCK_TASK, encoding="utf-8")
    call = ToolCall("mcp__time__get_current_time", {"timezone": "Asia/Tokyo"})
    fake_anthropic.queue(Reply(text="Let me ask.", tool_calls=[call]), Reply(text="It is late."))
    done = cli(home, "run", "clock", "--json", env=fake_anthropic.env(), timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = fake_anthropic.message_requests
    offered = {t["name"]: t for t in first.body["tools"]}
    assert {"mcp__time__get_current_time", "mcp__time__convert_time"} == set(offered)
    schema = offered["mcp__time__get_current_time"]["input_schema"]
    assert schema["required"] == ["timezone"]
    result = second.body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and not result.get("is_error")
    assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"
    assert "mcp__time__get_current_time" in done.stderr  # the one stderr line per call
    record = json.loads((home.logs / "clock.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "completed" and record["response"].endswith("It is late.")
    [step] = record["steps"]
    assert step["tool"] == "mcp__time__get_current_time" and not step["is_error"]
    assert json.loads(step["output"])["timezone"] == "Asia/Tokyo"
    # Every server the run started is gone (each ran in the home, carrying the marker).
    assert [pid for pid, _ in mcpprocs.marked() if _cwd(pid) == home.root] == []


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
