"""The claude-code brain's tools, for real: the bundled Claude Code CLI executes the
tool calls the fake Messages API scripts, under the task's grants (SPEC "Agent
tools"): what is allowed happens, what is not is refused and recorded as a failed
step, and nothing waits for a permission prompt.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner.brain.claude_code_steps import NO_RESULT
from runner.home import Home
from tests.claude_code_support import (
    GRANTS,
    configure,
    needs_cli,
    offered,
    our_cli_children,
    run_brain,
    stored,
    system_text,
    task,
)
from tests.fake_anthropic import FakeAnthropic, Recorded, Reply, ToolCall

pytestmark = needs_cli

MCP_SERVERS = Path(__file__).resolve().parent / "mcp_servers"


def results(request: Recorded) -> list[dict[str, Any]]:
    """The tool_result blocks of a request's last user message."""
    content = request.body["messages"][-1]["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content)
    return str(content)


def test_a_granted_write_happens_and_an_ungranted_one_is_refused(
    home: Home, cc_api: FakeAnthropic
) -> None:
    settings = configure(home)
    task(home, "Write today's plan.", extra=GRANTS)
    (home.root / "notes").mkdir()
    (home.root / "notes" / "inbox.md").write_text("buy milk\n")
    plan, hack = home.root / "plans" / "today.md", home.root / "notes" / "inbox.md"
    cc_api.queue(
        Reply(text="", tool_calls=[ToolCall("Read", {"file_path": str(hack)})]),
        Reply(
            text="",
            tool_calls=[ToolCall("Write", {"file_path": str(plan), "content": "1. milk\n"})],
        ),
        Reply(
            text="", tool_calls=[ToolCall("Write", {"file_path": str(hack), "content": "gone\n"})]
        ),
        Reply(text="", tool_calls=[ToolCall("Read", {"file_path": str(home.settings_file)})]),
        Reply(text="Plan written."),
    )
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "completed", outcome.record.error
    assert plan.read_text() == "1. milk\n"
    assert hack.read_text() == "buy milk\n"  # read-only: refused, untouched
    record = stored(home)[-1]
    assert record["response"] == "Plan written."
    assert record["turns"] == 5
    steps = record["steps"]
    assert [(s["tool"], s["is_error"]) for s in steps] == [
        ("Read", False),
        ("Write", False),
        ("Write", True),
        ("Read", True),
    ]
    assert "buy milk" in steps[0]["output"]
    assert steps[1]["input"] == {"file_path": "plans/today.md", "content": "1. milk\n"}
    assert "notes/inbox.md: not granted to write (granted: plans/**)" in steps[2]["output"]
    assert "runner.yaml: not granted to read" in steps[3]["output"]
    assert all(s["started"] <= s["finished"] for s in steps)
    # What the model saw: the refusal as an error result, and only the granted tools.
    first, *_, fourth, last = cc_api.message_requests
    assert offered(first) == ["Edit", "Glob", "Grep", "Read", "Write"]
    [refused] = results(fourth)
    assert refused["is_error"] is True and "not granted to write" in result_text(refused)
    assert results(last)[0]["is_error"] is True


def test_later_runs_see_a_line_per_tool_call_not_the_output(
    home: Home, cc_api: FakeAnthropic
) -> None:
    settings = configure(home)
    task(home, "Write today's plan.", extra=GRANTS)
    plan = home.root / "plans" / "today.md"
    cc_api.queue(
        Reply(
            text="",
            tool_calls=[ToolCall("Write", {"file_path": str(plan), "content": "SECRET-BODY"})],
        ),
        Reply(text="Written."),
        Reply(text="Again."),
    )
    assert run_brain(home, settings)[0].status == "completed"
    assert run_brain(home, settings)[0].status == "completed"
    context = system_text(cc_api.message_requests[-1])
    assert "Tools used:\nused Write plans/today.md\n" in context  # relative to the home
    assert "SECRET-BODY" not in context


def test_a_search_stays_in_a_folder_granted_whole(home: Home, cc_api: FakeAnthropic) -> None:
    settings = configure(home)
    task(home, "Find it.", extra=GRANTS)
    (home.root / "notes").mkdir()
    (home.root / "notes" / "a.md").write_text("needle\n")
    cc_api.queue(
        Reply(text="", tool_calls=[ToolCall("Grep", {"pattern": "needle"})]),
        Reply(text="", tool_calls=[ToolCall("Grep", {"pattern": "needle", "path": "notes"})]),
        Reply(text="", tool_calls=[ToolCall("Glob", {"pattern": "../*"})]),
        Reply(text="Found."),
    )
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "completed", outcome.record.error
    steps = stored(home)[-1]["steps"]
    assert [s["is_error"] for s in steps] == [True, False, True]
    assert "search only in a folder granted whole" in steps[0]["output"]
    assert "a.md" in steps[1]["output"]


def test_no_shell_unless_granted_and_then_it_runs(home: Home, cc_api: FakeAnthropic) -> None:
    settings = configure(home)
    task(home, "Run it.", extra=GRANTS)
    bash = ToolCall("Bash", {"command": "echo ran > shell.txt"})
    cc_api.queue(Reply(text="", tool_calls=[bash]), Reply(text="No shell."))
    assert run_brain(home, settings)[0].status == "completed"
    assert "Bash" not in offered(cc_api.message_requests[0])
    assert not (home.root / "shell.txt").exists()
    assert stored(home)[-1]["steps"][0]["is_error"] is True

    task(home, "Run it.", extra=GRANTS + "  shell: true\n")
    cc_api.queue(Reply(text="", tool_calls=[ToolCall("Bash", {"command": "echo ran > shell.txt"})]))
    cc_api.queue(Reply(text="Ran."))
    assert run_brain(home, settings)[0].status == "completed"
    assert "Bash" in offered(cc_api.message_requests[-1])
    assert (home.root / "shell.txt").read_text() == "ran\n"


def test_max_turns_passes_through_and_fails_the_run_with_its_steps(
    home: Home, cc_api: FakeAnthropic
) -> None:
    settings = configure(home)
    task(home, "Loop.", extra=GRANTS + "max_turns: 2\n")
    note = str(home.root / "notes" / "x.md")
    for _ in range(4):
        cc_api.queue(Reply(text="", tool_calls=[ToolCall("Read", {"file_path": note})]))
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "failed"
    record = stored(home)[-1]
    assert record["error"] == "max_turns"
    assert record["retryable"] is False
    assert len(cc_api.message_requests) == 2
    assert [s["tool"] for s in record["steps"]] == ["Read", "Read"]


def test_max_run_tokens_stops_the_run_when_passed(home: Home, cc_api: FakeAnthropic) -> None:
    settings = configure(home)
    task(home, "Loop.", extra=GRANTS + "max_run_tokens: 25\n")  # a round trip is 15 here
    note = home.root / "notes" / "x.md"
    note.parent.mkdir()
    note.write_text("x\n")
    for _ in range(4):
        cc_api.queue(Reply(text="", tool_calls=[ToolCall("Read", {"file_path": str(note)})]))
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "failed"
    record = stored(home)[-1]
    assert (record["error"], record["retryable"]) == ("max_run_tokens", False)
    assert record["usage"]["input_tokens"] == 20  # both round trips are counted
    assert len(cc_api.message_requests) == 2
    first, *cut = record["steps"]  # the second call, if Claude Code got to it, never ran
    assert (first["tool"], first["is_error"]) == ("Read", False)
    assert [s["output"] for s in cut] in ([], [NO_RESULT])
    assert our_cli_children() == []


def test_an_mcp_server_named_by_the_task_is_reached_the_others_are_not(
    home: Home, cc_api: FakeAnthropic
) -> None:
    settings = configure(home)
    echo = {"command": sys.executable, "args": [str(MCP_SERVERS / "echo_server.py")]}
    servers = {"mcpServers": {"echo": echo, "other": echo}}
    (home.root / ".mcp.json").write_text(json.dumps(servers))
    task(home, "Echo.", extra="tools:\n  mcp: [echo]\n")
    cc_api.queue(
        Reply(text="", tool_calls=[ToolCall("mcp__echo__echo", {"text": "ping"})]),
        Reply(text="Echoed."),
    )
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "completed", outcome.record.error
    [step] = stored(home)[-1]["steps"]
    assert (step["tool"], step["is_error"]) == ("mcp__echo__echo", False)
    assert "ping" in step["output"]  # the server really answered
    names = offered(cc_api.message_requests[0])
    assert "mcp__echo__echo" in names
    assert not [n for n in names if n.startswith("mcp__other")]


def test_an_mcp_server_sees_its_own_env_and_no_api_key(
    home: Home, cc_api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(home)
    monkeypatch.setenv("ECHO_TOKEN", "t0ken-value")
    echo = {
        "command": sys.executable,
        "args": [str(MCP_SERVERS / "echo_server.py")],
        "env": {"OWN": "${ECHO_TOKEN}"},
    }
    (home.root / ".mcp.json").write_text(json.dumps({"mcpServers": {"echo": echo}}))
    task(home, "Echo.", extra="tools:\n  mcp: [echo]\n")
    for name in ("ANTHROPIC_API_KEY", "ECHO_TOKEN", "OWN", "PATH"):
        cc_api.queue(Reply(text="", tool_calls=[ToolCall("mcp__echo__getenv", {"name": name})]))
    cc_api.queue(Reply(text="Done."))
    outcome, _ = run_brain(home, settings)
    assert outcome.status == "completed", outcome.record.error
    outputs = [s["output"] for s in stored(home)[-1]["steps"]]
    assert "<unset>" in outputs[0] and "sk-ant" not in outputs[0]
    assert "<unset>" in outputs[1]  # a variable of the runner's, not the server's
    assert "t0ken-value" in outputs[2]  # its own `env`, ${VAR} expanded
    assert "<unset>" not in outputs[3]


def test_a_timeout_mid_command_kills_the_cli_and_the_shell_it_started(
    home: Home, cc_api: FakeAnthropic, tmp_path: Path
) -> None:
    settings = configure(home, timeout="3s")
    task(home, "Hang.", extra=GRANTS + "  shell: true\n")
    pidfile = tmp_path / "sleep.pid"
    hang = ToolCall("Bash", {"command": f"sh -c 'echo $$ > {pidfile}; exec sleep 300'"})
    cc_api.queue(Reply(text="", tool_calls=[hang]), Reply(text="never"))
    started = time.monotonic()
    outcome, brain = run_brain(home, settings)
    assert outcome.status == "failed"
    assert outcome.record.error == "timed out: Claude Code sent nothing for 3s and was ended"
    assert time.monotonic() - started < 30
    sleeper = int(pidfile.read_text())
    assert not Path(f"/proc/{sleeper}").exists() or _zombie(sleeper)
    assert our_cli_children() == []
    from runner.brain import process_tree

    assert brain.last_tag is not None and process_tree.tagged(brain.last_tag) == []
    [step] = stored(home)[-1]["steps"]  # the call cut off is recorded, as failed
    assert step["tool"] == "Bash" and step["is_error"] is True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(autouse=True)
def _claude_home(cc_home: Path) -> Path:
    return cc_home
