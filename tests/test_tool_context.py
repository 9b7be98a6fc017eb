"""Continuity with tools (SPEC "Context of later runs"): a prior execution is its
instructions, a compact line per tool call, then its answer; compression summarises
the same; the day's budget stops runs once spent."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

from runner.brain import context as brain_context
from runner.brain.offline import OfflineBrain
from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink, Usage
from runner.home import Home
from runner.listing import list_tasks
from runner.logs import store as logs
from runner.run.budget import day_spend
from runner.run.executor import run_task
from runner.settings import BrainSettings, CompressionSettings, Settings
from runner.tools.base import ToolOutput
from runner.tools.steps import Step
from tests.conftest import cli
from tests.fakes import FakeClock

TASK = """\
title: Plan
instructions: Write today's plan.
tools:
  write: ["plans/**"]
"""


class PlanningBrain(OfflineBrain):
    """A real Brain that uses the tools it is offered: writes plans/<n>.md each run."""

    def __init__(self, tokens: int = 0) -> None:
        self.requests: list[BrainRequest] = []
        self.summaries: list[SummaryRequest] = []
        self.tokens = tokens

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        self.requests.append(request)
        assert request.tools is not None
        n = len(self.requests)
        arguments = {"path": f"plans/{n}.md", "content": "SECRET-OUTPUT " * 20}
        out: ToolOutput = request.tools.call("write_file", arguments)
        if request.on_step is not None:
            request.on_step(Step("write_file", arguments, out.text, out.is_error, "s", "f"))
        reply = super().complete(request, on_text)
        if self.tokens:
            reply = replace(reply, usage=Usage(input_tokens=self.tokens))
        return replace(reply, text=f"Plan {n} written.", turns=2)

    def summarize(self, request: SummaryRequest) -> BrainReply:
        self.summaries.append(request)
        return super().summarize(request)


def test_later_runs_see_a_compact_line_per_tool_call(home: Home) -> None:
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    brain = PlanningBrain()
    for _ in range(3):
        assert run_task(home, Settings(), "plan", brain, clock).ok
        clock.advance(60)
    assert (home.root / "plans" / "3.md").exists()
    history = brain.requests[-1].history
    assert [t.steps for t in history] == [
        ("used write_file plans/1.md",),
        ("used write_file plans/2.md",),
    ]
    record = logs.read_log(home, "plan").executions[0]
    assert record.turns == 2 and record.steps and record.steps[0].output.startswith("created")


def test_compression_summarises_the_tool_calls(home: Home) -> None:
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    settings = Settings(compression=CompressionSettings(max_executions=3, keep_recent=1))
    brain = PlanningBrain()
    for _ in range(4):
        assert run_task(home, settings, "plan", brain, clock).ok
        clock.advance(60)
    (request,) = brain.summaries
    assert "<tool_calls>\nused write_file plans/1.md\n</tool_calls>" in request.prompt
    assert "SECRET-OUTPUT" not in request.prompt  # raw tool output is never replayed
    summary = logs.read_log(home, "plan").summary
    assert summary is not None and "used write_file plans/3.md" in summary.text
    assert brain_context.SUMMARY_PROMPT.count("<tool_calls>") == 1


def test_the_daily_budget_stops_runs_once_spent(home: Home) -> None:
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    settings = Settings(brain=BrainSettings(daily_tokens=250))
    brain = PlanningBrain(tokens=100)
    outcomes = []
    for _ in range(4):
        outcomes.append(run_task(home, settings, "plan", brain, clock))
        clock.advance(60)
    assert [o.status for o in outcomes] == ["completed"] * 3 + ["failed"]
    last = outcomes[-1].record
    assert (last.error, last.retryable) == ("budget", False)
    assert len(brain.requests) == 3  # no brain call, no tool, once over the cap
    spend = day_spend(home, settings, clock)
    assert (spend.tokens, spend.cap, spend.exceeded) == (300, 250, True)
    clock.advance(86400)  # a new day: runs again
    assert run_task(home, settings, "plan", brain, clock).ok
    assert list_tasks(home, clock, settings).spend == day_spend(home, settings, clock)


class SeparatorBrain(PlanningBrain):
    """Answers with U+2028 / U+0085 in its text (kept unescaped in the log's JSON)."""

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        reply = super().complete(request, on_text)
        return replace(reply, text="line one\u2028line two\x85three")


def test_an_answer_with_a_line_separator_still_counts_against_the_budget(home: Home) -> None:
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    settings = Settings(brain=BrainSettings(daily_tokens=250))
    assert run_task(home, settings, "plan", SeparatorBrain(tokens=300), clock).ok
    assert "\u2028" in logs.log_path(home, "plan").read_text(encoding="utf-8")
    assert day_spend(home, settings, clock).tokens == 300


def test_list_shows_the_days_tokens_against_the_cap(home: Home) -> None:
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    home.settings_file.write_text("brain:\n  provider: offline\n  daily_tokens: 10\n")
    first = cli(home, "run", "plan")
    assert first.returncode == 0, first.stderr
    second = cli(home, "run", "plan", "--json")
    assert second.returncode == 1
    assert json.loads(second.stdout)["error"] == "budget"
    listed = cli(home, "list")
    assert re.search(r"today: \d+ tokens of 10 \(brain.daily_tokens\); over the cap", listed.stderr)
    doc = json.loads(cli(home, "list", "--json").stdout)
    assert doc["today"]["cap"] == 10 and doc["today"]["tokens"] > 10


def test_a_tool_loops_summed_usage_does_not_count_as_the_logs_context(home: Home) -> None:
    """Ten round trips of 6,000 tokens are 60,000 tokens spent, not a 60,000-token
    context: the next run sees a line per call, not the raw round trips. So the size is
    counted (the brain's count_tokens) rather than read from that usage."""
    (home.tasks / "plan.yaml").write_text(TASK, encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    settings = Settings(
        compression=CompressionSettings(max_tokens=50000, max_executions=50, keep_recent=1)
    )
    brain = PlanningBrain(tokens=60000)
    for _ in range(3):
        outcome = run_task(home, settings, "plan", brain, clock)
        assert outcome.ok and outcome.compression is None, outcome.compression
        clock.advance(60)
    assert logs.read_log(home, "plan").summary is None
