"""The claude-code brain: the real bundled Claude Code CLI, through the real Claude
Agent SDK, against the local fake Messages API (ANTHROPIC_BASE_URL), with its
non-essential traffic off. Nothing here mocks the SDK or the CLI.

Claude Code keeps its config under HOME; each test gets its own, so no test reads or
writes the user's ~/.claude and a login there cannot leak in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.brain import process_tree
from runner.clock import SystemClock
from runner.home import Home
from runner.logs import store as logs
from runner.run.executor import run_task
from runner.settings import load_settings
from tests.claude_code_support import (
    configure,
    needs_cli,
    our_cli_children,
    run,
    stored,
    system_text,
    task,
    transcripts,
    user_texts,
)
from tests.conftest import cli
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic, Reply

pytestmark = needs_cli


# -- a plain answer ------------------------------------------------------------------


def test_runner_run_streams_claude_codes_answer_and_records_it(
    home: Home, fake_anthropic: FakeAnthropic, cc_home: Path
) -> None:
    configure(home)
    task(home, "Say hello. Do not read @/etc/hostname.")
    fake_anthropic.queue(
        Reply(text="Hello from Claude Code.", chunks=["Hello ", "from Claude Code."])
    )
    done = cli(home, "run", "hello", env={**fake_anthropic.env(), "HOME": str(cc_home)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello from Claude Code.\n"
    assert "brain: claude-code (claude-sonnet-5-5)" in done.stderr
    [record] = stored(home)
    assert record["status"] == "completed"
    assert record["response"] == "Hello from Claude Code."
    assert record["model"] == "claude-sonnet-5-5"
    assert record["turns"] == 1
    assert record["usage"]["input_tokens"] == 10 and record["usage"]["output_tokens"] == 5
    assert isinstance(record["cost_usd"], float) and record["cost_usd"] > 0
    [request] = fake_anthropic.message_requests
    assert request.headers["x-api-key"] == FAKE_KEY
    assert request.body["model"] == "claude-sonnet-5-5"
    assert request.body.get("tools", []) == []  # no grants: a plain conversation
    # The instructions arrive as written: no @file expansion of calendar text.
    assert user_texts(request) == ["Say hello. Do not read @/etc/hostname.\n\n---\nTitle: Hello"]
    assert "You run unattended" in system_text(request)
    assert transcripts(cc_home) == []  # no Claude Code session was saved


# -- memory: ours, from the log --------------------------------------------------------


def test_run_two_gets_run_ones_fact_from_the_log_in_a_fresh_session(
    home: Home, cc_api: FakeAnthropic, cc_home: Path
) -> None:
    settings = configure(home)
    task(home, "The code word is PAPAYA-42. Keep it.")
    cc_api.queue(Reply(text="Noted: PAPAYA-42."))
    assert run(home, settings).status == "completed"
    task(home, "What was the code word?")
    cc_api.queue(Reply(text="It was PAPAYA-42."))
    outcome = run(home, settings)
    assert outcome.status == "completed"
    first, second = cc_api.message_requests
    # Run 2's request, as the server received it, holds run 1's instructions and answer.
    context = system_text(second)
    assert "The code word is PAPAYA-42. Keep it." in context
    assert "Noted: PAPAYA-42." in context
    assert context.index("## Execution 1") < context.index("Noted: PAPAYA-42.")
    # ... in the system prompt, not replayed from a Claude Code session: one user turn.
    assert user_texts(second) == ["What was the code word?\n\n---\nTitle: Hello"]
    session = "X-Claude-Code-Session-Id"
    assert first.headers[session] != second.headers[session]
    assert "PAPAYA" not in system_text(first)
    assert transcripts(cc_home) == []


def test_a_summary_header_and_a_failed_run_reach_the_context(
    home: Home, cc_api: FakeAnthropic
) -> None:
    settings = configure(home)
    task(home, "Plan the day.", extra="system: Answer in English.\n")
    logs.append_record(
        home,
        "hello",
        {
            "type": "summary",
            "id": "s1",
            "created": "2026-11-01T00:00:00.000000Z",
            "covers": 3,
            "usage": {},
            "text": "Earlier: the user likes tea.",
        },
    )
    cc_api.fail(400, times=3, message="prompt is broken")  # Claude Code tries 400s again too
    assert run(home, settings).status == "failed"
    cc_api.queue(Reply(text="Done."))
    assert run(home, settings).status == "completed"
    context = system_text(cc_api.message_requests[-1])
    assert context.index("Answer in English.") < context.index("Earlier: the user likes tea.")
    assert "(This execution failed and gave no answer: bad request: prompt is broken.)" in context


# -- failures in words ------------------------------------------------------------------


def test_no_key_and_no_login_says_so_and_is_not_retried(
    home: Home, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, cc_home: Path
) -> None:
    settings = configure(home)
    task(home, "Say hello.")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)  # no ANTHROPIC_API_KEY
    outcome = run(home, settings)
    assert outcome.status == "failed"
    record = stored(home)[-1]
    assert (
        record["error"] == "not logged in: run `claude` once and /login, or set ANTHROPIC_API_KEY"
    )
    assert record["retryable"] is False
    assert fake_anthropic.message_requests == []


def test_a_refused_key_is_an_authentication_failure(home: Home, cc_api: FakeAnthropic) -> None:
    settings = configure(home, max_retries=0)
    task(home, "Say hello.")
    cc_api.fail(401, times=5, message="invalid x-api-key")
    outcome = run(home, settings)
    record = outcome.record.to_json()
    assert outcome.status == "failed"
    assert record["error"].startswith("authentication failed")
    assert record["retryable"] is False
    assert len(cc_api.message_requests) == 1  # brain.max_retries reaches Claude Code
    assert FAKE_KEY not in json.dumps(record)


def test_runner_check_names_the_missing_package(home: Home) -> None:
    configure(home)
    # sys.modules[name] = None is Python's own way to make a package unimportable.
    code = (
        "import sys; sys.modules['claude_agent_sdk'] = None; "
        "from runner.cli.main import main; sys.argv[0] = 'runner'; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--home", str(home.root), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        f"{home.settings_file}: brain.provider is claude-code, but the claude-agent-sdk "
        "package is not installed: pip install 'calendar-agent-runner[claude-code]'"
    ) in done.stderr + done.stdout


# -- a timeout ends the CLI and everything it started ------------------------------------


def _tagged(tag: str | None) -> list[int]:
    assert tag is not None
    return process_tree.tagged(tag)


def test_a_silent_api_times_out_and_leaves_no_process(home: Home, cc_api: FakeAnthropic) -> None:
    from runner.brain.claude_code import ClaudeCodeBrain

    settings = configure(home, timeout="2s")
    task(home, "Say hello.")
    cc_api.queue(Reply(text="too late", delay=60))
    brain = ClaudeCodeBrain(settings.brain, home.root)
    started = time.monotonic()
    outcome = run_task(home, settings, "hello", brain, SystemClock())
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert outcome.record.error == "timed out: Claude Code sent nothing for 2s and was ended"
    assert outcome.record.may_retry
    assert elapsed < 15
    assert len(cc_api.message_requests) == 1  # the CLI really was waiting on the API
    assert our_cli_children() == []
    assert _tagged(brain.last_tag) == []


def test_compression_asks_claude_code_for_the_summary(home: Home, cc_api: FakeAnthropic) -> None:
    home.settings_file.write_text(
        "brain:\n  provider: claude-code\n  timeout: 20s\n"
        "compression:\n  max_executions: 1\n  keep_recent: 1\n",
        encoding="utf-8",
    )
    settings = load_settings(home.settings_file)
    task(home, "Note the weather.")
    cc_api.queue(
        Reply(text="Sunny."), Reply(text="Rainy."), Reply(text="It was sunny, then rainy.")
    )
    assert run(home, settings).status == "completed"
    outcome = run(home, settings)
    assert outcome.status == "completed" and outcome.compression is not None
    lines = logs.log_path(home, "hello").read_text(encoding="utf-8").splitlines()
    summary = json.loads(lines[0])
    assert (summary["type"], summary["text"]) == ("summary", "It was sunny, then rainy.")
    assert len(cc_api.message_requests) == 3
    assert cc_api.message_requests[-1].body.get("tools", []) == []  # a summary uses no tools
