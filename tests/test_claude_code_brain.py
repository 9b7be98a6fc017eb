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
from typing import Any

import pytest

from runner.brain import process_tree
from runner.clock import SystemClock
from runner.home import Home
from runner.logs import store as logs
from runner.run.executor import RunOutcome, run_task
from runner.settings import Settings, load_settings
from tests.conftest import cli
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic, Recorded, Reply


def _cli_runs() -> str | None:
    """Why the bundled CLI cannot run here, or None when it can."""
    try:
        import claude_agent_sdk
    except ImportError:
        return "claude-agent-sdk is not installed (pip install '.[claude-code]')"
    cli_path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not cli_path.is_file():
        return f"the claude-agent-sdk wheel has no bundled CLI at {cli_path}"
    try:
        done = subprocess.run([cli_path, "--version"], capture_output=True, timeout=60)
    except OSError as exc:
        return f"the bundled Claude Code CLI does not start here: {exc}"
    if done.returncode != 0:
        return f"the bundled Claude Code CLI fails here: {done.stderr[-300:]!r}"
    return None


WHY_NOT = _cli_runs()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


def configure(home: Home, *, timeout: str = "20s", max_retries: int = 2) -> Settings:
    home.settings_file.write_text(
        "brain:\n  provider: claude-code\n  model: claude-sonnet-5-5\n"
        f"  timeout: {timeout}\n  max_retries: {max_retries}\n",
        encoding="utf-8",
    )
    return load_settings(home.settings_file)


def task(home: Home, instructions: str, task_id: str = "hello", extra: str = "") -> None:
    body = "\n".join("  " + line for line in instructions.splitlines())
    (home.tasks / f"{task_id}.yaml").write_text(
        f"title: Hello\ninstructions: |\n{body}\n{extra}", encoding="utf-8"
    )


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME for Claude Code: no login, no settings, no sessions."""
    where = tmp_path / "cc-home"
    where.mkdir()
    monkeypatch.setenv("HOME", str(where))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    return where


@pytest.fixture
def api(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, config_home: Path) -> Any:
    for name, value in fake_anthropic.env().items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


def run(home: Home, settings: Settings, task_id: str = "hello") -> RunOutcome:
    from runner.brain.claude_code import ClaudeCodeBrain

    brain = ClaudeCodeBrain(settings.brain, home.root)
    return run_task(home, settings, task_id, brain, SystemClock())


def system_text(request: Recorded) -> str:
    system = request.body.get("system") or []
    return system if isinstance(system, str) else "\n".join(b.get("text", "") for b in system)


def user_texts(request: Recorded) -> list[str]:
    out: list[str] = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        out += [content] if isinstance(content, str) else [b.get("text", "") for b in content]
    return out


def stored(home: Home, key: str = "hello") -> list[dict[str, Any]]:
    """The log's execution records as they are on disk."""
    lines = logs.log_path(home, key).read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "execution"]


def transcripts(config: Path) -> list[Path]:
    return [p for p in config.rglob("*.jsonl") if "projects" in p.parts]


# -- a plain answer ------------------------------------------------------------------


def test_runner_run_streams_claude_codes_answer_and_records_it(
    home: Home, fake_anthropic: FakeAnthropic, config_home: Path
) -> None:
    configure(home)
    task(home, "Say hello. Do not read @/etc/hostname.")
    fake_anthropic.queue(
        Reply(text="Hello from Claude Code.", chunks=["Hello ", "from Claude Code."])
    )
    done = cli(home, "run", "hello", env={**fake_anthropic.env(), "HOME": str(config_home)})
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
    assert transcripts(config_home) == []  # no Claude Code session was saved


# -- memory: ours, from the log --------------------------------------------------------


def test_run_two_gets_run_ones_fact_from_the_log_in_a_fresh_session(
    home: Home, api: FakeAnthropic, config_home: Path
) -> None:
    settings = configure(home)
    task(home, "The code word is PAPAYA-42. Keep it.")
    api.queue(Reply(text="Noted: PAPAYA-42."))
    assert run(home, settings).status == "completed"
    task(home, "What was the code word?")
    api.queue(Reply(text="It was PAPAYA-42."))
    outcome = run(home, settings)
    assert outcome.status == "completed"
    first, second = api.message_requests
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
    assert transcripts(config_home) == []


def test_a_summary_header_and_a_failed_run_reach_the_context(
    home: Home, api: FakeAnthropic
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
    api.fail(400, times=3, message="prompt is broken")  # Claude Code tries 400s again too
    assert run(home, settings).status == "failed"
    api.queue(Reply(text="Done."))
    assert run(home, settings).status == "completed"
    context = system_text(api.message_requests[-1])
    assert context.index("Answer in English.") < context.index("Earlier: the user likes tea.")
    assert "(This execution failed and gave no answer: bad request: prompt is broken.)" in context


# -- failures in words ------------------------------------------------------------------


def test_no_key_and_no_login_says_so_and_is_not_retried(
    home: Home, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, config_home: Path
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


def test_a_refused_key_is_an_authentication_failure(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home, max_retries=0)
    task(home, "Say hello.")
    api.fail(401, times=5, message="invalid x-api-key")
    outcome = run(home, settings)
    record = outcome.record.to_json()
    assert outcome.status == "failed"
    assert record["error"].startswith("authentication failed")
    assert record["retryable"] is False
    assert len(api.message_requests) == 1  # brain.max_retries reaches Claude Code
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


def _our_cli_children() -> list[str]:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "claude" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{child.pid} {child.cmdline()[:2]}")
        except psutil.NoSuchProcess:
            continue
    return found


def _tagged(tag: str | None) -> list[int]:
    assert tag is not None
    return process_tree.tagged(tag)


def test_a_silent_api_times_out_and_leaves_no_process(home: Home, api: FakeAnthropic) -> None:
    from runner.brain.claude_code import ClaudeCodeBrain

    settings = configure(home, timeout="2s")
    task(home, "Say hello.")
    api.queue(Reply(text="too late", delay=60))
    brain = ClaudeCodeBrain(settings.brain, home.root)
    started = time.monotonic()
    outcome = run_task(home, settings, "hello", brain, SystemClock())
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert outcome.record.error == "timed out: Claude Code sent nothing for 2s and was ended"
    assert outcome.record.may_retry
    assert elapsed < 15
    assert len(api.message_requests) == 1  # the CLI really was waiting on the API
    assert _our_cli_children() == []
    assert _tagged(brain.last_tag) == []
