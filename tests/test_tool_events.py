"""One line per tool call outside `runner run` too (SPEC "The loop"): the watch and
tick show each step of a run as it happens, `--json` as a `step` event. Real
subprocesses, the real SDK against the local fake Messages API."""

from __future__ import annotations

from collections.abc import Callable

from runner.home import Home
from runner.keys import series_key
from tests.conftest import cli
from tests.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.test_watch_e2e import WatchProcess, event_ics, soon, watch  # noqa: F401

TASK = """\
title: Plan
instructions: Read my inbox.
tools:
  read: ["notes/**"]
"""


def tool_home(home: Home, api: FakeAnthropic) -> None:
    home.settings_file.write_text("brain:\n  provider: anthropic\n  max_retries: 0\n")
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    (home.root / "notes").mkdir()
    (home.root / "notes" / "inbox.md").write_text("buy milk\ncall Ana\n", encoding="utf-8")
    (home.calendars / "agent").mkdir()
    api.queue(
        Reply(text="", tool_calls=[ToolCall("read_file", {"path": "notes/inbox.md"})]),
        Reply(text="", tool_calls=[ToolCall("read_file", {"path": "../x"})]),
        Reply(text="Done."),
    )


def test_watch_json_has_a_step_event_per_tool_call(
    home: Home,
    fake_anthropic: FakeAnthropic,
    watch: Callable[..., WatchProcess],  # noqa: F811
) -> None:
    tool_home(home, fake_anthropic)
    w = watch(fake_anthropic.env())
    ics = event_ics("plan@tools", soon(2), description="task: plan")
    (home.calendars / "agent" / "plan.ics").write_text(ics, encoding="utf-8")
    key = series_key("plan@tools")
    first = w.wait_for("step", timeout=20, key=key)
    assert first["task"].startswith(f"{key}/")
    assert (first["tool"], first["subject"], first["is_error"]) == (
        "read_file",
        "notes/inbox.md",
        False,
    )
    assert first["output_bytes"] == 18 and "error" not in first and "time" in first
    second = w.wait_for("step", timeout=20, key=key)
    assert second["is_error"] and "'..' is refused" in second["error"]
    assert w.wait_for("finished", timeout=20, key=key)["status"] == "completed"
    order = [e["event"] for e in w.seen if e.get("key") == key]
    assert order == ["fired", "step", "step", "finished"]
    assert w.stop() == 0


def test_tick_shows_one_line_per_tool_call(home: Home, fake_anthropic: FakeAnthropic) -> None:
    tool_home(home, fake_anthropic)
    ics = event_ics("plan@tick", soon(-1), description="task: plan")
    (home.calendars / "agent" / "plan.ics").write_text(ics, encoding="utf-8")
    done = cli(home, "tick", env=fake_anthropic.env())
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("tool ")]
    task = f"{series_key('plan@tick')}/"
    assert len(lines) == 2 and all(f"tool     {task}" in ln for ln in lines)
    assert lines[0].endswith("  read_file notes/inbox.md (18 B)")
    assert "read_file ../x (error: ../x: '..' is refused" in lines[1]
