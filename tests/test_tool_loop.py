"""The tool-use loop through the real `anthropic` SDK against the local fake Messages
API, scripted with tool_use blocks (SPEC "Agent tools"). In-process: one SDK import."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner.brain.anthropic_brain import AnthropicBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.logs import store as logs
from runner.run.executor import RunOutcome, run_task
from runner.settings import Settings, load_settings
from runner.tools.files import DEFAULT_CAP
from runner.tools.steps import Step
from tests.conftest import cli, kill_at
from tests.fake_anthropic import FakeAnthropic, Recorded, Reply, ToolCall

TASK = """\
title: Morning plan
instructions: |
  Read notes/inbox.md, then write today's plan.
tools:
  read: ["notes/**"]
  write: ["plans/**"]
"""


@pytest.fixture
def api(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    for name, value in fake_anthropic.env().items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


@pytest.fixture
def settings(home: Home) -> Settings:
    home.settings_file.write_text(
        "brain:\n  provider: anthropic\n  timeout: 10s\n  max_retries: 2\n", encoding="utf-8"
    )
    (home.root / "notes").mkdir()
    (home.root / "notes" / "inbox.md").write_text("buy milk\ncall Ana\n", encoding="utf-8")
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    return load_settings(home.settings_file)


def run(home: Home, settings: Settings, steps: list[Step] | None = None) -> RunOutcome:
    brain = AnthropicBrain(settings.brain)
    sink = steps.append if steps is not None else None
    return run_task(home, settings, "plan", brain, SystemClock(), on_step=sink)


def use(name: str, **arguments: Any) -> Reply:
    return Reply(text="", tool_calls=[ToolCall(name, arguments)])


def results(request: Recorded) -> list[dict[str, Any]]:
    """The tool_result blocks of a request's last message."""
    content = request.body["messages"][-1]["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def breakpoints(body: dict[str, Any]) -> list[str]:
    found = [f"tools[{i}]" for i, t in enumerate(body.get("tools", [])) if "cache_control" in t]
    for i, block in enumerate(body.get("system") or []):
        if "cache_control" in block:
            found.append(f"system[{i}]")
    for m, message in enumerate(body["messages"]):
        content = message["content"]
        for b, block in enumerate(content if isinstance(content, list) else []):
            if "cache_control" in block:
                found.append(f"messages[{m}][{b}]")
    return found


def strip(messages: list[dict[str, Any]]) -> str:
    """Messages as JSON without their cache marks."""
    plain = [
        {
            **m,
            "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]],
        }
        for m in messages
    ]
    return json.dumps(plain)


def assert_no_dangling_tool_use(body: dict[str, Any]) -> None:
    messages = body["messages"]
    for index, message in enumerate(messages):
        content = message["content"] if isinstance(message["content"], list) else []
        ids = {b["id"] for b in content if b.get("type") == "tool_use"}
        if not ids:
            continue
        assert index + 1 < len(messages), "a tool_use with no message after it"
        after = messages[index + 1]["content"]
        answered = {b["tool_use_id"] for b in after if b.get("type") == "tool_result"}
        assert ids <= answered


def test_read_write_edit_then_answer(home: Home, settings: Settings, api: FakeAnthropic) -> None:
    api.queue(
        use("read_file", path="notes/inbox.md"),
        use("write_file", path="plans/2026-12-01.md", content="- milk\n- Ana\n"),
        use("edit_file", path="plans/2026-12-01.md", old="- Ana", new="- call Ana"),
        Reply(text="Plan written."),
    )
    shown: list[Step] = []
    outcome = run(home, settings, shown)
    assert outcome.status == "completed", outcome.record.to_json()["error"]
    assert (home.root / "plans" / "2026-12-01.md").read_text() == "- milk\n- call Ana\n"
    record = outcome.record.to_json()
    assert record["response"] == "Plan written."
    assert record["turns"] == 4
    assert [s["tool"] for s in record["steps"]] == ["read_file", "write_file", "edit_file"]
    assert record["steps"][0]["output"] == "buy milk\ncall Ana\n"
    assert not any(s["is_error"] for s in record["steps"])
    assert set(record["steps"][0]) == {"tool", "input", "output", "is_error", "started", "finished"}
    assert [s.tool for s in shown] == ["read_file", "write_file", "edit_file"]
    # usage is the sum over the four round trips (10 in, 5 out each from the fake)
    assert record["usage"]["input_tokens"] == 40 and record["usage"]["output_tokens"] == 20
    requests = api.message_requests
    assert len(requests) == 4
    offered = [t["name"] for t in requests[0].body["tools"]]
    assert offered == ["read_file", "list_files", "search_files", "write_file", "edit_file"]
    assert results(requests[1])[0]["content"] == "buy milk\ncall Ana\n"
    for request in requests:
        assert_no_dangling_tool_use(request.body)
    # The journal of the finished run is gone; its steps live in the record.
    assert not list((home.state / "runs").glob("*.jsonl"))
    assert logs.read_log(home, "plan").executions[-1].to_json()["steps"] == record["steps"]


def test_the_cache_breakpoint_moves_to_the_newest_block(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    api.queue(
        use("read_file", path="notes/inbox.md"),
        use("list_files", glob="notes/**"),
        use("search_files", pattern="milk"),
        Reply(text="Done."),
    )
    assert run(home, settings).status == "completed"
    marks = [breakpoints(r.body) for r in api.message_requests]
    # No system text, no history: the tools' end, then the newest two blocks.
    assert marks[0] == ["tools[4]", "messages[0][0]"]
    assert marks[1] == ["tools[4]", "messages[0][0]", "messages[2][0]"]
    assert marks[2] == ["tools[4]", "messages[2][0]", "messages[4][0]"]
    assert marks[3] == ["tools[4]", "messages[4][0]", "messages[6][0]"]
    # The prefix up to an earlier breakpoint is sent again unchanged, byte for byte.
    first, second = api.message_requests[1].body, api.message_requests[2].body
    assert strip(second["messages"][:3]) == strip(first["messages"][:3])


def test_with_system_text_and_history_all_four_breakpoints_are_used(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    task = home.tasks / "plan.yaml"
    task.write_text(task.read_text() + "system: Be brief.\n", encoding="utf-8")
    api.queue(Reply(text="First run."))
    assert run(home, settings).ok
    api.queue(use("read_file", path="notes/inbox.md"), use("list_files", glob="notes/**"))
    api.queue(Reply(text="Done."))
    assert run(home, settings).ok
    bodies = [r.body for r in api.message_requests[1:]]
    marks = [breakpoints(body) for body in bodies]
    # The system prompt's end (tools + system), the last prior turn, the newest two.
    assert marks[0] == ["system[0]", "messages[1][0]", "messages[2][0]"]
    assert marks[1] == ["system[0]", "messages[1][0]", "messages[2][0]", "messages[4][0]"]
    assert marks[2] == ["system[0]", "messages[1][0]", "messages[4][0]", "messages[6][0]"]
    assert all("cache_control" not in t for body in bodies for t in body["tools"])


def test_the_fake_api_refuses_a_fifth_breakpoint_as_the_api_does(api: FakeAnthropic) -> None:
    import anthropic

    mark: dict[str, Any] = {"type": "ephemeral"}
    blocks: list[Any] = [{"type": "text", "text": f"{n}", "cache_control": mark} for n in range(5)]
    client = anthropic.Anthropic(max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks"):
        client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": blocks}]
        )
    client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": blocks[:4]}]
    )


@pytest.mark.parametrize(
    "path, why",
    [
        ("../x", "'..' is refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("notes/out", "outside the home"),
        (".git/config", "never open to tools"),
        ("logs/x.jsonl", "never open to tools"),
    ],
)
def test_refused_paths_are_error_results_and_the_run_goes_on(
    home: Home, settings: Settings, api: FakeAnthropic, path: str, why: str, tmp_path: Any
) -> None:
    (tmp_path / "secret").write_text("outside")
    (home.root / "notes" / "out").symlink_to(tmp_path / "secret")
    (home.root / ".git").mkdir(exist_ok=True)
    (home.root / ".git" / "config").write_text("[core]\n")
    (home.root / "logs" / "x.jsonl").write_text("{}\n")
    api.queue(use("read_file", path=path), use("write_file", path=path, content="pwned"))
    api.queue(Reply(text="I could not."))
    outcome = run(home, settings)
    assert outcome.status == "completed"
    for request in api.message_requests[1:3]:
        (result,) = results(request)
        assert result["is_error"] is True
        assert why in result["content"]
    assert [s["is_error"] for s in outcome.record.to_json()["steps"]] == [True, True]
    assert (tmp_path / "secret").read_text() == "outside"
    assert (home.root / ".git" / "config").read_text() == "[core]\n"
    assert (home.root / "logs" / "x.jsonl").read_text() == "{}\n"


def test_max_turns_fails_the_run(home: Home, settings: Settings, api: FakeAnthropic) -> None:
    (home.tasks / "plan.yaml").write_text(TASK + "max_turns: 2\n", encoding="utf-8")
    api.queue(*(use("list_files", glob="notes/**") for _ in range(5)))
    outcome = run(home, settings)
    assert outcome.status == "failed"
    assert outcome.record.to_json()["error"] == "max_turns"
    assert outcome.record.to_json()["retryable"] is False
    assert outcome.record.to_json()["turns"] == 2
    assert len(outcome.record.to_json()["steps"]) == 1  # the second round's call was never run
    assert len(api.message_requests) == 2
    assert outcome.record.to_json()["usage"]["input_tokens"] == 20


def test_max_run_tokens_stops_the_loop(home: Home, settings: Settings, api: FakeAnthropic) -> None:
    (home.tasks / "plan.yaml").write_text(TASK + "max_run_tokens: 25\n", encoding="utf-8")
    api.queue(*(use("list_files", glob="notes/**") for _ in range(5)))
    outcome = run(home, settings)
    assert (outcome.status, outcome.record.to_json()["error"]) == ("failed", "max_run_tokens")
    assert outcome.record.to_json()["turns"] == 2  # 15 tokens after one round trip, 30 after two
    assert len(api.message_requests) == 2


def test_a_result_over_the_cap_is_cut_and_says_so(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    (home.root / "notes" / "big.md").write_text("x" * (DEFAULT_CAP + 5000), encoding="utf-8")
    api.queue(use("read_file", path="notes/big.md"), Reply(text="Long."))
    outcome = run(home, settings)
    (result,) = results(api.message_requests[1])
    assert len(result["content"].encode()) <= DEFAULT_CAP
    assert f"[cut: the result was {DEFAULT_CAP + 5000:,} bytes" in result["content"]
    assert outcome.record.to_json()["steps"][0]["output"] == result["content"]


def test_an_overload_mid_loop_is_retried_and_no_step_repeats(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    api.queue(use("write_file", path="plans/a.md", content="one\n"))
    api.fail(529)
    api.queue(use("edit_file", path="plans/a.md", old="one", new="two"), Reply(text="ok"))
    outcome = run(home, settings)
    assert outcome.status == "completed", outcome.record.to_json()["error"]
    requests = api.message_requests
    assert len(requests) == 4
    assert requests[1].body == requests[2].body  # the SDK's retry sent the same request
    assert [s["tool"] for s in outcome.record.to_json()["steps"]] == ["write_file", "edit_file"]
    assert (home.root / "plans" / "a.md").read_text() == "two\n"


def test_an_api_failure_mid_loop_keeps_the_steps_done(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    api.queue(use("write_file", path="plans/a.md", content="one\n"))
    api.fail(529, times=3)
    outcome = run(home, settings)
    assert outcome.status == "failed"
    assert outcome.record.to_json()["error"].startswith("overloaded after 3 tries")
    assert [s["tool"] for s in outcome.record.to_json()["steps"]] == ["write_file"]
    assert (
        outcome.record.to_json()["turns"] == 2
        and outcome.record.to_json()["usage"]["input_tokens"] == 10
    )
    # The next run's context says what was done, as text; no tool_use goes back.
    api.queue(Reply(text="Finished."))
    assert run(home, settings).status == "completed"
    body = api.message_requests[-1].body
    assert_no_dangling_tool_use(body)
    history = json.dumps(body["messages"][:-1])
    assert "used write_file plans/a.md" in history
    assert "tool_use" not in history and "tool_result" not in history
    assert "tools" in body


def test_a_task_without_tools_offers_none(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    (home.tasks / "plan.yaml").write_text("title: T\ninstructions: Hi.\n", encoding="utf-8")
    outcome = run(home, settings)
    assert outcome.status == "completed"
    assert "tools" not in api.message_requests[0].body
    assert breakpoints(api.message_requests[0].body) == []
    assert outcome.record.to_json()["steps"] == [] and outcome.record.to_json()["turns"] == 1


def test_sigkill_mid_loop_keeps_the_steps_and_the_retry_knows(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    api.queue(
        Reply(
            text="Writing.",
            tool_calls=[
                ToolCall("write_file", {"path": "plans/a.md", "content": "one\n"}),
                ToolCall("read_file", {"path": "plans/a.md"}),
            ],
        )
    )
    kill_at(home, "tool-loop-after-step", "run", "plan")  # killed after the first step
    assert (home.root / "plans" / "a.md").read_text() == "one\n"
    (journal,) = (home.state / "runs").glob("*.jsonl")
    assert [json.loads(line)["tool"] for line in journal.read_text().splitlines()] == ["write_file"]
    api.queue(Reply(text="Finished."))
    done = cli(home, "run", "plan", env=api.env())
    assert done.returncode == 0, done.stderr
    first, second = logs.read_log(home, "plan").executions
    assert (first.status, first.error) == ("failed", "interrupted")
    assert [s.tool for s in first.steps or ()] == ["write_file"]
    assert first.steps and first.steps[0].output.startswith("created plans/a.md")
    assert second.status == "completed" and second.response == "Finished."
    assert not journal.exists()
    retry = api.message_requests[-1].body
    assert_no_dangling_tool_use(retry)
    context = json.dumps(retry["messages"][:-1])
    assert "used write_file plans/a.md" in context and "interrupted" in context
    assert "tool_use" not in context


def test_runner_run_shows_one_line_per_tool_call(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    api.queue(use("read_file", path="notes/inbox.md"), use("read_file", path="../x"))
    api.queue(Reply(text="Done."))
    done = cli(home, "run", "plan", env=api.env())
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("tool ")]
    assert lines[0] == "tool read_file notes/inbox.md (18 B)"
    assert lines[1].startswith("tool read_file ../x (error: ../x: '..' is refused")
    assert done.stdout.strip() == "Done."
    as_json = cli(home, "run", "plan", "--json", env=api.env())
    record = json.loads(as_json.stdout)
    assert record["turns"] == 1 and record["steps"] == []
    shown = cli(home, "log", "plan")
    assert "  used read_file notes/inbox.md" in shown.stdout
    assert "2 round trips" not in shown.stdout and "3 round trips" in shown.stdout


def test_a_tool_line_never_passes_the_models_escape_codes_to_the_terminal(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J"
    api.queue(use(f"read_file{evil}", path="notes/x"), use("read_file", path=f"notes/{evil}"))
    api.queue(Reply(text="Done."))
    done = cli(home, "run", "plan", env=api.env())
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("tool ")]
    assert lines[0].startswith("tool read_file\\x1b]0;owned\\x07\\x1b[2J notes/x (error:")
    assert lines[1].startswith("tool read_file notes/\\x1b]0;owned")
    shown = cli(home, "log", "plan")
    assert "used read_file\\x1b]0;owned" in shown.stdout and "\x1b" not in shown.stdout


def test_a_huge_tool_input_is_capped_in_the_record(
    home: Home, settings: Settings, api: FakeAnthropic
) -> None:
    content = "y" * (DEFAULT_CAP * 3)
    api.queue(use("write_file", path="plans/big.md", content=content), Reply(text="ok"))
    outcome = run(home, settings)
    assert (home.root / "plans" / "big.md").read_text() == content  # the call got it all
    (step,) = outcome.record.steps or ()
    assert len(step.input["content"]) < DEFAULT_CAP // 4
    assert "[cut: 307,200 characters" in step.input["content"]
    assert len(logs.log_path(home, "plan").read_bytes()) < DEFAULT_CAP
