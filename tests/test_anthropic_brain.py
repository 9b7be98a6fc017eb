"""The Anthropic brain through the real SDK, against the fake Messages API server.

Most tests run the executor in-process (one SDK import for the whole file); the ones
about exit codes, stdout and stderr run the real CLI in a subprocess, with
ANTHROPIC_BASE_URL pointing at the fake server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from runner.brain.anthropic_brain import AnthropicBrain
from runner.brain.protocol import BrainRequest, SummaryRequest
from runner.clock import SystemClock
from runner.errors import BrainError
from runner.events import Event, notices_to
from runner.home import Home
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord, SummaryRecord
from runner.run.executor import RunOutcome, run_task
from runner.settings import BrainSettings, Settings, load_settings
from tests.conftest import cli
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic, Reply

INSTRUCTIONS = "Say hello, and tell me what you remember from our earlier runs."


def configure(home: Home, *, timeout: str = "10s", max_retries: int = 2) -> Settings:
    home.settings_file.write_text(
        "brain:\n"
        "  provider: anthropic\n"
        "  model: claude-sonnet-5-5\n"
        f"  timeout: {timeout}\n"
        f"  max_retries: {max_retries}\n",
        encoding="utf-8",
    )
    return load_settings(home.settings_file)


@pytest.fixture
def api(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    """The fake server, with this process's environment pointing the SDK at it."""
    for name, value in fake_anthropic.env().items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


def run(home: Home, settings: Settings, task_id: str = "hello") -> RunOutcome:
    return run_task(home, settings, task_id, AnthropicBrain(settings.brain), SystemClock())


def records(home: Home, key: str = "hello") -> list[ExecutionRecord]:
    return logs.read_log(home, key).executions


def texts(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    return [content] if isinstance(content, str) else [b["text"] for b in content]


# -- failures within one attempt: the SDK's own retries ----------------------------


def test_overloaded_twice_then_success_completes(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home)
    api.fail(529, times=2)
    api.queue(Reply(text="Hello after the storm."))
    heard: list[Event] = []
    with notices_to(heard.append):
        outcome = run(home, settings)
    assert outcome.status == "completed"
    assert outcome.record.response == "Hello after the storm."
    assert len(api.message_requests) == 3
    notices = [str(n.to_json()["message"]) for n in heard]
    assert [n.split(" in ")[0] for n in notices] == [
        "brain: retrying (1 of 2)",
        "brain: retrying (2 of 2)",
    ]


def test_server_error_storm_beyond_the_budget_fails_retryably(
    home: Home, api: FakeAnthropic
) -> None:
    settings = configure(home, max_retries=2)
    api.fail(500, times=10, message="Internal server error")
    outcome = run(home, settings)
    assert outcome.status == "failed"
    assert len(api.message_requests) == 3  # 1 try + max_retries, then the attempt ends
    record = records(home)[-1]
    assert record.error == "API error (HTTP 500) after 3 tries: Internal server error"
    assert record.retryable is None  # left out: tick/watch may try again later


def test_overloaded_beyond_the_budget_says_so_in_words(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home, max_retries=1)
    api.fail(529, times=5)
    outcome = run(home, settings)
    assert outcome.record.error == "overloaded after 2 tries"
    assert len(api.message_requests) == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "bad request: messages: text content blocks must be non-empty"),
        (404, "model not found: claude-sonnet-5-5"),
        (403, "permission denied for model claude-sonnet-5-5: not allowed"),
    ],
)
def test_client_errors_are_final_and_never_retried(
    home: Home, api: FakeAnthropic, status: int, message: str
) -> None:
    settings = configure(home)
    detail = {400: "messages: text content blocks must be non-empty", 403: "not allowed"}
    api.fail(status, message=detail.get(status, "model: claude-sonnet-5-5"))
    outcome = run(home, settings)
    assert outcome.status == "failed"
    assert len(api.message_requests) == 1
    assert records(home)[-1].error == message
    assert records(home)[-1].retryable is False


def test_a_response_slower_than_the_timeout_fails(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home, timeout="1s", max_retries=0)
    api.queue(Reply(delay=30))  # released at teardown
    outcome = run(home, settings)
    assert outcome.status == "failed"
    assert outcome.record.error == "timed out after 1s (1 try)"
    assert len(api.message_requests) == 1


def test_a_stall_mid_answer_longer_than_the_timeout_fails(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home, timeout="1s", max_retries=0)
    api.queue(Reply(chunks=["Half", " never comes"], gate=threading.Event()))  # never opened
    seen: list[str] = []
    brain = AnthropicBrain(settings.brain)
    outcome = run_task(home, settings, "hello", brain, SystemClock(), on_text=seen.append)
    assert seen == ["Half"]
    assert outcome.status == "failed"
    assert outcome.record.error == "timed out after 1s (1 try)"


def test_an_unreachable_api_is_named_by_its_url(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(home, max_retries=0)
    with FakeAnthropic() as gone:
        url = gone.url  # a port that was just free and is closed again
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    outcome = run(home, settings)
    assert outcome.record.error == f"cannot reach the API at {url} (1 try)"


def test_no_key_fails_without_a_request(
    home: Home, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(home)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    monkeypatch.setenv("HOME", str(home.root.parent))  # no credentials profile there
    outcome = run(home, settings)
    assert outcome.record.error == "no API key: set ANTHROPIC_API_KEY"
    assert outcome.record.retryable is False
    assert fake_anthropic.requests == []


def test_an_error_event_mid_answer_fails_the_execution(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home)
    api.queue(Reply(chunks=["Half an ", "answer"], error_mid_stream="overloaded_error"))
    seen: list[str] = []
    brain = AnthropicBrain(settings.brain)
    outcome = run_task(home, settings, "hello", brain, SystemClock(), on_text=seen.append)
    assert seen == ["Half an "]
    assert outcome.status == "failed"
    assert outcome.record.error == "overloaded after 1 try"  # the SDK does not retry a stream
    assert len(api.message_requests) == 1


# -- context: prior executions, summary header, cache breakpoint --------------------


def test_later_runs_send_the_earlier_executions_in_order(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home)
    api.queue(Reply(text="answer one"), Reply(text="answer two"), Reply(text="answer three"))
    for _ in range(3):
        assert run(home, settings).ok
    first, second, third = (r.body for r in api.message_requests)
    assert [m["role"] for m in first["messages"]] == ["user"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert [texts(m)[0] for m in third["messages"][:4]] == [
        INSTRUCTIONS + "\n",
        "answer one",
        INSTRUCTIONS + "\n",
        "answer two",
    ]
    current = texts(third["messages"][-1])[0]
    assert current.startswith(INSTRUCTIONS) and "Title: Hello" in current
    # The one cache breakpoint: on the last prior-turn block, not on the new prompt.
    marked = [
        (i, j)
        for i, m in enumerate(third["messages"])
        for j, b in enumerate(m["content"])
        if "cache_control" in b
    ]
    assert marked == [(3, 0)]
    assert third["messages"][3]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in json.dumps(first)


def test_a_failed_execution_is_context_as_a_note(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home)
    api.fail(500, times=3)
    assert not run(home, settings).ok
    assert run(home, settings).ok
    last = api.message_requests[-1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user"]
    note = texts(last[1])[0]
    assert note.startswith("(This execution failed") and "API error (HTTP 500)" in note


def test_the_summary_header_goes_in_the_system_prompt(home: Home, api: FakeAnthropic) -> None:
    settings = configure(home)
    (home.tasks / "hello.yaml").write_text(
        f"title: Hello\nsystem: Be brief.\ninstructions: {INSTRUCTIONS}\n", encoding="utf-8"
    )
    summary = {
        "type": "summary",
        "id": "s1",
        "created": "2026-11-20T08:00:00.000000Z",
        "covers": 4,
        "usage": {"input_tokens": 1000, "output_tokens": 200},
        "text": "Four earlier runs: the user likes short answers.",
    }
    (home.logs / "hello.jsonl").write_text(json.dumps(summary) + "\n", encoding="utf-8")
    assert run(home, settings).ok
    body = api.message_requests[-1].body
    assert len(body["system"]) == 2
    assert body["system"][0]["text"] == "Be brief."
    assert body["system"][1]["text"].endswith("Four earlier runs: the user likes short answers.")
    assert body["system"][1]["cache_control"] == {"type": "ephemeral"}  # no prior turns
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_the_task_system_text_overrides_the_one_in_runner_yaml(
    home: Home, api: FakeAnthropic
) -> None:
    configure(home)
    with home.settings_file.open("a", encoding="utf-8") as f:
        f.write("  system: Answer in French.\n  max_tokens: 321\n")
    settings = load_settings(home.settings_file)
    (home.tasks / "own.yaml").write_text(
        "title: Own\nsystem: Answer in Dutch.\nmax_tokens: 55\ninstructions: Hi.\n",
        encoding="utf-8",
    )
    assert run(home, settings).ok
    assert run(home, settings, "own").ok
    default, own = (r.body for r in api.message_requests)
    assert (default["system"][0]["text"], default["max_tokens"]) == ("Answer in French.", 321)
    assert (own["system"][0]["text"], own["max_tokens"]) == ("Answer in Dutch.", 55)
    assert default["model"] == own["model"] == "claude-sonnet-5-5"


# -- records: stop_reason, usage ----------------------------------------------------


def test_stop_reason_and_cache_usage_are_recorded_and_totalled(
    home: Home, api: FakeAnthropic
) -> None:
    settings = configure(home)
    usage = {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 40,
    }
    api.queue(Reply(text="cut sh", stop_reason="max_tokens", usage=usage), Reply(usage=usage))
    run(home, settings)
    run(home, settings)
    first = records(home)[0]
    assert first.stop_reason == "max_tokens"
    assert first.usage.to_dict() == usage
    totals = logs.read_log(home, "hello").usage_totals()
    assert totals == {k: 2 * v for k, v in usage.items()}
    shown = cli(home, "log", "hello")
    assert "stopped: max_tokens" in shown.stdout
    assert "tokens 704 in / 14 out" in shown.stderr  # input + cache read + cache creation
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert next(t for t in listed["tasks"] if t["id"] == "hello")["tokens"] == totals


def test_usage_totals_fold_in_the_summary_and_cache_tokens() -> None:
    summary = SummaryRecord.from_json(
        {"type": "summary", "usage": {"input_tokens": 100, "cache_read_input_tokens": 9}}
    )
    executions = [
        ExecutionRecord.from_json(r)
        for r in (
            {"type": "execution", "usage": {"input_tokens": 1, "output_tokens": 2}},
            {"type": "execution", "usage": {"cache_creation_input_tokens": 30, "output_tokens": 4}},
            {"type": "execution", "usage": None},  # a failed run before any reply
        )
    ]
    assert logs.LogContents("k", summary, executions).usage_totals() == {
        "input_tokens": 101,
        "output_tokens": 6,
        "cache_read_input_tokens": 9,
        "cache_creation_input_tokens": 30,
    }


# -- count_tokens and summarize -----------------------------------------------------


def test_count_tokens_sends_the_same_context(api: FakeAnthropic) -> None:
    brain = AnthropicBrain(BrainSettings(provider="anthropic", max_retries=0))
    api.queue_count(1234)
    request = BrainRequest("claude-sonnet-5-5", 100, "now this", "s", system="Be brief.")
    assert brain.count_tokens(request) == 1234
    sent = api.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body["system"][0]["text"] == "Be brief."
    assert texts(sent.body["messages"][0]) == ["now this"]


def test_summarize_is_one_plain_call_and_rejects_an_empty_summary(api: FakeAnthropic) -> None:
    brain = AnthropicBrain(BrainSettings(provider="anthropic", max_retries=0))
    request = SummaryRequest(
        model="claude-sonnet-5-5",
        max_tokens=500,
        system="You summarise.",
        prompt="Summarise these.",
        previous_summary=None,
        executions=(),
        cap_tokens=400,
    )
    api.queue(Reply(text="The gist."), Reply(text=""))
    assert brain.summarize(request).text == "The gist."
    sent = api.message_requests[-1].body
    assert sent["system"] == "You summarise." and not sent.get("stream")
    assert sent["messages"] == [{"role": "user", "content": "Summarise these."}]
    with pytest.raises(BrainError, match="empty"):
        brain.summarize(request)


# -- the CLI: exit codes, streaming, --json, secrets --------------------------------


def test_auth_failure_fails_fast_with_a_clear_message(
    home: Home, fake_anthropic: FakeAnthropic
) -> None:
    configure(home)
    fake_anthropic.fail(401, message="invalid x-api-key")
    done = cli(home, "run", "hello", env=fake_anthropic.env())
    assert done.returncode == 1
    assert "authentication failed: check ANTHROPIC_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(fake_anthropic.message_requests) == 1  # no retry
    assert "status: failed" in (home.tasks / "hello.yaml").read_text(encoding="utf-8")
    assert records(home)[-1].retryable is False


def start_run(home: Home, fake_anthropic: FakeAnthropic) -> subprocess.Popen[bytes]:
    """`runner run hello` against the fake API, its stdout and stderr piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "--home", str(home.root), "run", "hello"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, **fake_anthropic.env()},
    )


def test_streaming_reaches_stdout_as_it_arrives(home: Home, fake_anthropic: FakeAnthropic) -> None:
    configure(home)
    gate = threading.Event()
    fake_anthropic.queue(Reply(chunks=["First words ", "then the rest."], gate=gate))
    proc = start_run(home, fake_anthropic)
    try:
        assert proc.stdout is not None
        # The server holds the second chunk until the gate opens: seeing the first
        # one now proves it was written while the answer was still arriving.
        seen = proc.stdout.read(len(b"First words "))
        assert seen == b"First words "
        assert proc.poll() is None
    finally:
        gate.set()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen + out == b"First words then the rest.\n"


def test_a_reader_that_goes_away_does_not_stop_the_run(
    home: Home, fake_anthropic: FakeAnthropic
) -> None:
    configure(home)
    gate = threading.Event()
    fake_anthropic.queue(Reply(chunks=["First ", "then the rest."], gate=gate))
    proc = start_run(home, fake_anthropic)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.read(len(b"First ")) == b"First "
        proc.stdout.close()  # like `runner run hello | head -c 6`
    finally:
        gate.set()
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert records(home)[-1].response == "First then the rest."


def test_json_prints_only_the_final_record(home: Home, fake_anthropic: FakeAnthropic) -> None:
    configure(home)
    fake_anthropic.queue(Reply(text="Streamed but not printed."))
    done = cli(home, "run", "hello", "--json", env=fake_anthropic.env())
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert record["response"] == "Streamed but not printed."
    assert record == {"version": 1, **records(home)[-1].to_json()}


def test_the_api_key_appears_in_no_file_and_no_output(
    home: Home, fake_anthropic: FakeAnthropic
) -> None:
    configure(home, max_retries=1)
    env = fake_anthropic.env()
    fake_anthropic.queue(Reply(text="fine"))
    fake_anthropic.fail(401)
    fake_anthropic.fail(400, message=f"echoing a header: Bearer {FAKE_KEY}")
    outputs = [cli(home, "run", "hello", env=env) for _ in range(3)]
    outputs += [cli(home, *args, env=env) for args in (["log", "hello"], ["list"], ["check"])]
    assert [o.returncode for o in outputs[:3]] == [0, 1, 1]
    # The key did go out, in the Authorization header, so the check below means something.
    sent = fake_anthropic.message_requests[0].headers
    assert FAKE_KEY in (sent.get("Authorization", "") + sent.get("X-Api-Key", ""))
    assert "bad request: echoing a header: Bearer [redacted]" in outputs[2].stderr
    for done in outputs:
        assert FAKE_KEY not in done.stdout + done.stderr
    for path in Path(home.root).rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
