"""A 10-step tool loop against the local fake Messages API: the runner's own time per
step, and how much of each request the prompt cache can serve.

One `runner run` of a task granting `read: [notes/**]`, `write: [plans/**]`, through
the real `anthropic` SDK against tests/fake_anthropic.py (127.0.0.1, zero latency),
scripted to answer with ten tool_use round trips (reads, a listing, a search, writes
and edits) and then a final answer. In-process, after one warm-up run.

- Runner time per step: from the moment the server has written answer n to the
  moment request n+1 has arrived, i.e. everything the client side does between two
  round trips: the SDK parsing the stream, the tool call itself, the step's journal
  append (fsync), building and sending the next request. Also shown without the tool
  call's own time (step.finished − step.started). Target ≤ 5 ms per step.
- Cache share: for each request, the longest prefix (tools, system, messages, in the
  API's order) that ends at one of its cache breakpoints and equals a prefix that
  ended at a breakpoint of an earlier request of the run (so the API has written it
  to the cache), as a share of the whole request (JSON characters, cache marks
  removed). Target ≥ 90 % from the third request on. Shown for a series with five
  earlier runs in its log (the common case: a recurring task) and for a first run,
  beside its bound: the share of each request that an earlier one had sent at all.

Usage: python bench/bench_tools.py [ROUNDS]   (default 5 timed runs)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from runner.brain.anthropic_brain import AnthropicBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.init import init_home
from runner.run.executor import RunOutcome, run_task
from runner.run.journal import Journal
from runner.settings import load_settings
from runner.tools.steps import Step
from tests.fake_anthropic import FakeAnthropic, Reply, ToolCall

TASK = """\
title: Morning plan
instructions: |
  Read my notes, check yesterday's plan and write today's plan into plans/.
tools:
  read: ["notes/**", "plans/**"]
  write: ["plans/**"]
max_turns: 20
"""
NOTE = "- {n}: call the plumber about the boiler; Ana's birthday on Friday; pay rent.\n" * 4
ANSWER = "Today's plan is written to plans/today.md. " * 25  # ~1 KB, like a real answer


def script() -> list[Reply]:
    calls = [
        ToolCall("list_files", {"glob": "notes/**"}),
        ToolCall("read_file", {"path": "notes/inbox.md"}),
        ToolCall("read_file", {"path": "notes/work.md"}),
        ToolCall("search_files", {"pattern": "birthday"}),
        ToolCall("read_file", {"path": "plans/yesterday.md"}),
        ToolCall("write_file", {"path": "plans/today.md", "content": "# Plan\n- boiler\n"}),
        ToolCall("edit_file", {"path": "plans/today.md", "old": "- boiler", "new": "- plumber"}),
        ToolCall("read_file", {"path": "plans/today.md"}),
        ToolCall("edit_file", {"path": "plans/today.md", "old": "# Plan", "new": "# Today"}),
        ToolCall("list_files", {"glob": "plans/*.md"}),
    ]
    replies = [Reply(text="Next step.", tool_calls=[call]) for call in calls]
    return [*replies, Reply(text=ANSWER)]


def make_home(root: Path) -> Home:
    home = Home(root)
    init_home(home)
    home.settings_file.write_text("brain:\n  provider: anthropic\n  max_retries: 0\n")
    (home.tasks / "plan.yaml").write_text(TASK)
    for name in ("inbox", "work", "ideas"):
        (root / "notes").mkdir(exist_ok=True)
        (root / "notes" / f"{name}.md").write_text(NOTE.format(n=name))
    (root / "plans").mkdir(exist_ok=True)
    (root / "plans" / "yesterday.md").write_text("# Yesterday\n- groceries\n")
    return home


def run(home: Home, api: FakeAnthropic, steps: list[Step]) -> RunOutcome:
    settings = load_settings(home.settings_file)
    brain = AnthropicBrain(settings.brain)
    api.queue(*script())
    outcome = run_task(home, settings, "plan", brain, SystemClock(), on_step=steps.append)
    assert outcome.ok, outcome.record.error
    assert len(steps) == 10, len(steps)
    return outcome


# -- the cache share ---------------------------------------------------------------


def segments(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The request as (JSON of one block without its cache mark, marked?) in order."""

    def plain(block: dict[str, Any]) -> tuple[str, bool]:
        mark = "cache_control" in block
        return json.dumps({k: v for k, v in block.items() if k != "cache_control"}), mark

    out = [plain(t) for t in body.get("tools", [])]
    out += [plain(b) for b in body.get("system") or []]
    for message in body["messages"]:
        out.append((f"<{message['role']}>", False))
        out += [plain(b) for b in message["content"]]
    return out


def cache_shares(bodies: list[dict[str, Any]]) -> list[float]:
    written: set[str] = set()  # prefixes that ended at a breakpoint of an earlier request
    shares = []
    for body in bodies:
        segs = segments(body)
        total = sum(len(s) for s, _ in segs)
        prefix, best, mine = "", 0, []
        for text, marked in segs:
            prefix += text
            if marked:
                mine.append(prefix)
                if prefix in written:
                    best = len(prefix)
        shares.append(best / total)
        written.update(mine)
    return shares


def sent_shares(bodies: list[dict[str, Any]]) -> list[float]:
    """The bound on cache_shares: for each request, the longest prefix that an earlier
    request of the run sent too, breakpoint or not, as a share of the whole. What is
    beyond it (the newest round trip's tool calls and results) no cache can hold."""
    earlier: list[list[str]] = []
    shares = []
    for body in bodies:
        texts = [text for text, _ in segments(body)]
        best = 0
        for other in earlier:
            common = 0
            for mine, theirs in zip(texts, other, strict=False):
                if mine != theirs:
                    break
                common += len(mine)
            best = max(best, common)
        shares.append(best / sum(len(t) for t in texts))
        earlier.append(texts)
    return shares


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    gaps: list[float] = []
    beyond_tool: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as api:
        os.environ.update(api.env())
        home = make_home(Path(tmp) / "home")
        run(home, api, [])  # warm-up: imports, the SDK client, page cache
        first_run = [r.body for r in api.message_requests][-11:]
        for _ in range(rounds):
            steps: list[Step] = []
            api.timings.clear()
            run(home, api, steps)
            times = list(api.timings)
            for n in range(10):
                gap = times[n + 1][0] - times[n][1]
                gaps.append(gap)
                tool = _seconds(steps[n])
                beyond_tool.append(gap - tool)
        later_run = [r.body for r in api.message_requests][-11:]
        home_root = Path(tmp) / "journal"
        home_root.mkdir()
        append, sync = journal_ms(home_root)
    ms = [g * 1000 for g in gaps]
    ms_no_tool = [g * 1000 for g in beyond_tool]
    print(f"machine: {machine()}")
    print(f"runner time between round trips, {len(ms)} steps over {rounds} runs:")
    print(f"  median {statistics.median(ms):.2f} ms, p90 {_p90(ms):.2f} ms, max {max(ms):.2f} ms")
    print(
        f"  without the tool call itself: median {statistics.median(ms_no_tool):.2f} ms, "
        f"p90 {_p90(ms_no_tool):.2f} ms  (target ≤ 5 ms per step)"
    )
    print(
        f"  of which the step's journal append (one line): median {append:.2f} ms; "
        f"its fdatasync, overlapped with the next request: median {sync:.2f} ms"
    )
    for label, bodies in (("run 1 of the series", first_run), (f"run {rounds + 1}", later_run)):
        shares = cache_shares(bodies)
        bound = sent_shares(bodies)
        text = " ".join(f"{s * 100:.0f}" for s in shares)
        worst = min(shares[2:]) * 100
        print(f"cache share per request, {label} (%): {text}")
        print(f"  from the third request on: min {worst:.1f} %  (target ≥ 90 %)")
        print(
            f"  already sent in an earlier request (the most any breakpoints can give) (%): "
            f"{' '.join(f'{s * 100:.0f}' for s in bound)}; min from the third "
            f"{min(bound[2:]) * 100:.1f} %"
        )


def journal_ms(root: Path) -> tuple[float, float]:
    """Median times of one step's journal append (the O_APPEND write, on the loop's
    path) and of its fdatasync (in a helper thread while the next request goes out)."""
    journal = Journal(root / "bench.jsonl")
    step = Step("read_file", {"path": "notes/inbox.md"}, NOTE, False, "s", "f")
    appends, syncs = [], []
    for _ in range(50):
        start = time.perf_counter()
        journal.append(step)
        wrote = time.perf_counter()
        journal.sync()
        appends.append((wrote - start) * 1000)
        syncs.append((time.perf_counter() - wrote) * 1000)
    journal.close()
    return statistics.median(appends), statistics.median(syncs)


def _seconds(step: Step) -> float:
    from runner.clock import parse_utc_iso

    return (parse_utc_iso(step.finished) - parse_utc_iso(step.started)).total_seconds()


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.9 * (len(ordered) - 1))]


if __name__ == "__main__":
    main()
