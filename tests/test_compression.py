"""Log compression: summary headers, the archive, crash safety, bounded context."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from runner.brain import context as brain_context
from runner.brain.offline import OfflineBrain, estimate_tokens
from runner.brain.protocol import (
    PriorTurn,
    SummaryRequest,
    Usage,
)
from runner.errors import BrainError, LogCorruptError, UsageError
from runner.home import Home
from runner.locks import try_series_lock
from runner.logs import compression
from runner.logs import store as logs
from runner.run import executor
from runner.settings import BrainSettings, CompressionSettings, Settings, load_settings
from runner.tasks import files as tasks
from tests.fakes import FakeClock, RecordingBrain

from .conftest import cli, kill_at
from .fake_anthropic import FakeAnthropic, Reply

LOCKER = "The locker code is 4711"
DAY = 86400.0


def broken_summaries(empty: bool = False) -> RecordingBrain:
    """Answers runs, but every summary fails (or comes back empty)."""
    if empty:
        return RecordingBrain(empty_summaries=True)
    return RecordingBrain(summary_error=BrainError("the summary server exploded"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 1, 8, 0, tzinfo=UTC))


def settings_with(**comp: int) -> Settings:
    return Settings(compression=CompressionSettings(**comp))


# -- a daily series, built the way the calendar side writes occurrence tasks -----------

SERIES = "briefing-1a2b3c4d"


def daily_instructions(day: int) -> str:
    text = f"Write the daily briefing for day {day}.\nToday's topic: topic number {day}."
    return (LOCKER + ".\n" + text) if day == 1 else text


def write_occurrence(home: Home, day: int, instructions: str) -> str:
    moment = datetime(2026, 11, 1, 8, 0, tzinfo=UTC).timestamp() + (day - 1) * DAY
    start = datetime.fromtimestamp(moment, UTC)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    path = home.tasks / SERIES / f"{stamp}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {
        "title": "Daily briefing",
        "instructions": instructions,
        "source": "local",
        "calendar": "agent",
        "occurrence": start.isoformat(),
        "recurrence_id": SERIES,
    }
    path.write_text(tasks.new_task_text(fields, tasks.TaskState()), encoding="utf-8")
    return f"{SERIES}/{stamp}"


def run_days(
    home: Home, settings: Settings, brain: Any, clock: FakeClock, days: range
) -> list[executor.RunOutcome]:
    outcomes = []
    for day in days:
        task_id = write_occurrence(home, day, daily_instructions(day))
        outcomes.append(executor.run_task(home, settings, task_id, brain, clock))
        clock.advance(DAY)
    return outcomes


def run_hello(home: Home, settings: Settings, brain: Any, clock: FakeClock, times: int) -> None:
    for _ in range(times):
        assert executor.run_task(home, settings, "hello", brain, clock).ok
        clock.advance(60)


def executions_ever(home: Home, key: str) -> list[str]:
    return [str(r.id) for r in logs.read_all(home, key).executions]


def assert_intact(home: Home, key: str, ids: list[str]) -> None:
    """Valid files, and every execution readable exactly once, in order."""
    for path in (logs.log_path(home, key), logs.archive_path(home, key)):
        if path.exists():
            raw = path.read_bytes()
            assert raw.endswith(b"\n"), path
            for line in raw.decode("utf-8").splitlines():
                assert json.loads(line)["type"] in ("summary", "execution")
    assert executions_ever(home, key) == ids
    live = logs.read_log(home, key)
    assert live.covers + len(live.executions) == len(ids)


# -- the offline brain's extractive summary ---------------------------------------------


def summary_request(previous: str | None, instructions: list[str], cap: int) -> SummaryRequest:
    return SummaryRequest(
        model="offline",
        max_tokens=100,
        system="s",
        prompt="p",
        previous_summary=previous,
        executions=tuple(PriorTurn(i, "answer", "completed") for i in instructions),
        cap_tokens=cap,
    )


def test_offline_summary_is_the_previous_summary_plus_distinct_lines() -> None:
    request = summary_request(
        "Old fact A\nOld fact B",
        ["Do X.\n\nOld fact B\nNew fact C", "Do X.\n  indented stays verbatim  "],
        cap=1000,
    )
    reply = OfflineBrain().summarize(request)
    assert reply.text.splitlines() == [
        "Old fact A",
        "Old fact B",
        "Do X.",
        "New fact C",
        "  indented stays verbatim  ",
    ]
    assert reply.usage.output_tokens == estimate_tokens(reply.text)


def test_offline_summary_drops_the_oldest_lines_at_the_cap() -> None:
    lines = [f"line {n:03d} " + "x" * 30 for n in range(100)]  # 39 characters each
    reply = OfflineBrain().summarize(summary_request("\n".join(lines[:50]), lines[50:], cap=100))
    kept = reply.text.splitlines()
    assert estimate_tokens(reply.text) <= 100
    assert len(kept) == 10 and kept == lines[-10:]  # 10 lines: 399 chars = 100 tokens


# -- when compression runs ---------------------------------------------------------------


def test_below_both_thresholds_nothing_happens(home: Home, clock: FakeClock) -> None:
    brain = RecordingBrain()
    run_hello(home, settings_with(max_executions=8, keep_recent=2), brain, clock, 8)
    assert not logs.archive_path(home, "hello").exists()
    assert brain.summaries == []
    assert logs.read_log(home, "hello").summary is None


def test_more_executions_than_max_compresses_keeping_recent(home: Home, clock: FakeClock) -> None:
    settings = settings_with(max_executions=6, keep_recent=3)
    brain = RecordingBrain()
    run_hello(home, settings, brain, clock, 6)
    ids = executions_ever(home, "hello")
    outcome = executor.run_task(home, settings, "hello", brain, clock)
    ids.append(outcome.record.id)
    assert outcome.ok and outcome.compression is not None
    assert outcome.compression.status == "compressed"
    assert outcome.compression.reason == "executions"
    live = logs.read_log(home, "hello")
    assert [r.id for r in live.executions] == ids[-3:]  # keep_recent, in full
    assert live.executions == logs.read_all(home, "hello").executions[-3:]
    assert [r.id for r in logs.read_archive(home, "hello")] == ids[:4]
    assert live.summary is not None and live.summary.covers == 4
    assert_intact(home, "hello", ids)
    # The header leads the live log, as SPEC's record shape says.
    first = json.loads(logs.log_path(home, "hello").read_text().splitlines()[0])
    assert set(first) == {"type", "id", "created", "covers", "usage", "text"}
    assert first["created"] == "2026-11-01T08:06:00.000000Z"


def test_tokens_over_max_compresses_from_recorded_usage(home: Home, clock: FakeClock) -> None:
    settings = settings_with(max_tokens=200, max_executions=100, keep_recent=1)
    brain = RecordingBrain()
    outcomes = [executor.run_task(home, settings, "hello", brain, clock) for _ in range(3)]
    context = outcomes[-1].record.usage.context_tokens
    assert context > 200  # the third run's own context crossed the line
    assert [o.compression for o in outcomes[:2]] == [None, None]
    result = outcomes[-1].compression
    assert result is not None and result.reason == "tokens" and result.context_tokens == context
    assert brain.counted == []  # usage existed: count_tokens was never needed


def test_context_tokens_counts_only_where_no_usage_exists(home: Home, clock: FakeClock) -> None:
    settings = settings_with(keep_recent=1)
    brain = RecordingBrain()
    run_hello(home, settings, brain, clock, 2)
    contents = logs.read_log(home, "hello")
    recorded = contents.executions[-1].usage.context_tokens
    assert compression.context_tokens(contents, brain, settings) == recorded
    assert brain.counted == []
    # A failed last run records no usage: the newest recorded usage still stands.
    failed = replace(contents.executions[-1], id="failed", status="failed", usage=Usage())
    with_failure = logs.LogContents("hello", None, [*contents.executions, failed])
    assert compression.context_tokens(with_failure, brain, settings) == recorded
    assert brain.counted == []
    # An imported log (no usage recorded) is counted by the brain, once.
    imported = [replace(r, usage=Usage()) for r in contents.executions]
    bare = logs.LogContents("hello", None, imported)
    counted = compression.context_tokens(bare, brain, settings)
    assert len(brain.counted) == 1 and counted == brain.count_tokens(brain.counted[0])
    assert [t.instructions for t in brain.counted[0].history] == [r.instructions for r in imported]
    # Right after a compression the last usage predates the header: counted again.
    compression.compress(home, settings, "hello", brain, clock)
    after = logs.read_log(home, "hello")
    assert compression.recorded_context_tokens(after) is None
    assert compression.context_tokens(after, brain, settings) < recorded


# -- folding and the header's numbers ----------------------------------------------------


def test_second_compression_folds_the_first_header_in(home: Home, clock: FakeClock) -> None:
    settings = settings_with(keep_recent=2)
    brain = RecordingBrain()
    run_days(home, settings, brain, clock, range(1, 6))
    first = compression.compress(home, settings, SERIES, brain, clock)
    assert (first.status, first.summarised, first.covers) == ("compressed", 3, 3)
    header1 = logs.read_log(home, SERIES).summary
    assert header1 is not None and LOCKER in header1.text
    clock.advance(60)
    run_days(home, settings, brain, clock, range(6, 10))
    second = compression.compress(home, settings, SERIES, brain, clock)
    assert (second.summarised, second.covers, second.kept) == (4, 7, 2)
    assert brain.summaries[1].previous_summary == header1.text
    assert header1.text in brain.summaries[1].prompt  # the model sees it too
    everything = logs.read_all(home, SERIES)
    live = logs.read_log(home, SERIES)
    assert live.summary is not None and live.summary.text.startswith(header1.text)
    # covers and usage add up: header + live executions = every execution ever.
    assert live.covers + len(live.executions) == len(everything.executions) == 9
    totals = logs.LogContents(SERIES, None, everything.executions).usage_totals()
    assert live.usage_totals() == totals
    assert (
        live.summary.usage.to_dict()
        == logs.LogContents(SERIES, None, everything.executions[:7]).usage_totals()
    )


def test_summary_prompt_keeps_the_order_and_forbids_invention() -> None:
    prompt = brain_context.SUMMARY_PROMPT
    order = ["Standing instructions", "Facts and decisions", "Open items", "What changed"]
    positions = [prompt.index(heading) for heading in order]
    assert positions == sorted(positions)
    assert "Invent nothing" in prompt and "previous summary header" in prompt


def test_force_with_few_executions_does_nothing(home: Home, clock: FakeClock) -> None:
    settings = settings_with(keep_recent=5)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    before = logs.log_path(home, "hello").read_bytes()
    result = compression.compress(home, settings, "hello", RecordingBrain(), clock)
    assert (result.status, result.executions) == ("nothing", 3)
    assert logs.log_path(home, "hello").read_bytes() == before


def test_unknown_key_is_a_usage_error(home: Home, clock: FakeClock) -> None:
    with pytest.raises(UsageError):
        compression.compress(home, Settings(), "nope", OfflineBrain(), clock)
    with pytest.raises(UsageError):
        compression.compress(home, Settings(), "../x", OfflineBrain(), clock)


# -- a failed or empty summary replaces nothing ------------------------------------------


@pytest.mark.parametrize("empty", [False, True], ids=["error", "empty"])
def test_failed_summary_leaves_the_log_byte_for_byte(
    home: Home, clock: FakeClock, empty: bool
) -> None:
    settings = settings_with(max_executions=3, keep_recent=1)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    before = logs.log_path(home, "hello").read_bytes()
    broken = broken_summaries(empty=empty)
    outcome = executor.run_task(home, settings, "hello", broken, clock)
    # The execution still counts as completed; only its own record was appended.
    assert outcome.ok and tasks.load_task(home, "hello").state.status == "completed"
    assert outcome.compression is not None and outcome.compression.status == "failed"
    assert outcome.compression.error
    after_run = logs.log_path(home, "hello").read_bytes()
    assert after_run.startswith(before) and after_run.count(b"\n") == 4
    # Asked directly: the same, and not one byte changes.
    result = compression.compress(home, settings, "hello", broken, clock)
    assert result.status == "failed"
    assert logs.log_path(home, "hello").read_bytes() == after_run
    assert not logs.archive_path(home, "hello").exists()
    note = compression.last_failure(home, "hello")
    assert note is not None and note["failures"] == 2 and note["error"] == result.error
    # The next run tries again, and with a working brain it succeeds.
    good = RecordingBrain()
    outcome = executor.run_task(home, settings, "hello", good, clock)
    assert outcome.compression is not None and outcome.compression.status == "compressed"
    assert compression.last_failure(home, "hello") is None
    assert len(executions_ever(home, "hello")) == 5


def test_a_failure_below_the_thresholds_is_retried_by_the_next_run(
    home: Home, clock: FakeClock
) -> None:
    settings = settings_with(keep_recent=1)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    assert compression.compress(home, settings, "hello", broken_summaries(), clock).status == (
        "failed"
    )
    outcome = executor.run_task(home, settings, "hello", RecordingBrain(), clock)
    assert outcome.compression is not None
    assert (outcome.compression.reason, outcome.compression.status) == ("retry", "compressed")


def test_compress_waits_for_the_series_lock(home: Home, clock: FakeClock) -> None:
    settings = settings_with(keep_recent=1)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    before = logs.log_path(home, "hello").read_bytes()
    held = try_series_lock(home, "hello")  # as a running execution holds it
    assert held is not None
    waiting = threading.Event()
    results: list[compression.CompressResult] = []

    def compress_now() -> None:
        results.append(
            compression.compress(
                home, settings, "hello", RecordingBrain(), clock, on_wait=lambda _: waiting.set()
            )
        )

    worker = threading.Thread(target=compress_now)
    worker.start()
    try:
        assert waiting.wait(30)
        assert logs.log_path(home, "hello").read_bytes() == before and results == []
    finally:
        held.release()
        worker.join(30)
    assert [r.status for r in results] == ["compressed"]


def test_a_run_never_reads_the_archive(home: Home, clock: FakeClock) -> None:
    settings = settings_with(keep_recent=1)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    compression.compress(home, settings, "hello", RecordingBrain(), clock)
    archive = logs.archive_path(home, "hello")
    archive.write_bytes(b"not json\n" + archive.read_bytes())  # a bad line in the middle
    assert executor.run_task(home, settings, "hello", RecordingBrain(), clock).ok
    with pytest.raises(LogCorruptError):
        logs.read_all(home, "hello")


# -- a fact from the first of 50 runs reaches the 50th ----------------------------------


def test_fact_from_run_1_of_50_reaches_run_50_through_the_header(
    home: Home, clock: FakeClock
) -> None:
    settings = Settings()  # defaults: max_executions 20, keep_recent 5
    brain = RecordingBrain()
    outcomes = run_days(home, settings, brain, clock, range(1, 51))
    assert all(o.ok for o in outcomes)
    compressed = [n + 1 for n, o in enumerate(outcomes) if o.compression is not None]
    assert compressed == [21, 37]  # > 20 executions: summarise all but the newest 5
    last = brain.requests[-1]
    assert "day 50" in last.prompt
    assert last.summary is not None and LOCKER in last.summary
    assert all(LOCKER not in t.instructions for t in last.history)  # only via the header
    assert len(last.history) <= settings.compression.max_executions
    assert LOCKER in (brain.summaries[1].previous_summary or "")  # folded, not re-read
    assert_intact(home, SERIES, [str(o.record.id) for o in outcomes])


class SummarizingFake(FakeAnthropic):
    """The fake Messages API, answering summary requests extractively like the offline
    brain does: the previous summary's lines and the instruction lines of the prompt."""

    def _message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        message = super()._message(reply, body)
        if body.get("system") == brain_context.SUMMARY_SYSTEM:
            prompt = str(body["messages"][0]["content"])
            blocks = re.findall(r"<previous_summary>\n(.*?)\n</previous_summary>", prompt, re.S)
            blocks += re.findall(r"<instructions>\n(.*?)\n</instructions>", prompt, re.S)
            lines: list[str] = []
            for block in blocks:
                for line in block.splitlines():
                    if line.strip() and not line.startswith("(none") and line not in lines:
                        lines.append(line)
            message["content"] = [{"type": "text", "text": "\n".join(lines)}]
        return message


def anthropic_settings(**comp: int) -> Settings:
    return Settings(
        brain=BrainSettings(provider="anthropic", model="claude-fake-model"),
        compression=CompressionSettings(**comp),
    )


def anthropic_brain(server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, s: Settings) -> Any:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    from runner.brain.anthropic_brain import AnthropicBrain

    return AnthropicBrain(s.brain)


def test_fact_from_run_1_of_50_reaches_run_50_via_the_anthropic_brain(
    home: Home, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = anthropic_settings()
    with SummarizingFake() as server:
        brain = anthropic_brain(server, monkeypatch, settings)
        outcomes = run_days(home, settings, brain, clock, range(1, 51))
        requests = [r.body for r in server.message_requests]
    assert all(o.ok for o in outcomes)
    summaries = [b for b in requests if b.get("system") == brain_context.SUMMARY_SYSTEM]
    runs = [b for b in requests if b.get("system") != brain_context.SUMMARY_SYSTEM]
    assert len(runs) == 50 and len(summaries) == 2
    first, second = (str(b["messages"][0]["content"]) for b in summaries)
    assert "(none: this is the first summary)" in first and LOCKER in first  # from run 1
    previous = re.findall(r"<previous_summary>\n(.*?)\n</previous_summary>", second, re.S)
    assert LOCKER in previous[0]  # ... and the second has it only through the header
    assert LOCKER not in second.split("<executions>")[1]
    last = runs[-1]
    system_text = "\n".join(block["text"] for block in last["system"])
    assert LOCKER in system_text  # the header, in the system prompt
    turns = json.dumps(last["messages"])
    assert "day 50" in turns and LOCKER not in turns
    assert_intact(home, SERIES, [str(o.record.id) for o in outcomes])


def test_server_error_during_summary_leaves_the_log_untouched(
    home: Home, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = anthropic_settings(keep_recent=1)
    with SummarizingFake() as server:
        brain = anthropic_brain(server, monkeypatch, settings)
        run_hello(home, settings, brain, clock, 3)
        before = logs.log_path(home, "hello").read_bytes()
        server.fail(500, times=settings.brain.max_retries + 1)
        result = compression.compress(home, settings, "hello", brain, clock)
        assert result.status == "failed" and result.error
        assert logs.log_path(home, "hello").read_bytes() == before
        assert not logs.archive_path(home, "hello").exists()
        # The server is back: the next attempt compresses.
        assert compression.compress(home, settings, "hello", brain, clock).status == "compressed"
    assert_intact(home, "hello", executions_ever(home, "hello"))
    assert len(executions_ever(home, "hello")) == 3


def test_compress_on_an_imported_log_counts_tokens_through_the_api(
    home: Home, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = anthropic_settings(keep_recent=1)
    run_hello(home, settings_with(), RecordingBrain(), clock, 3)
    path = logs.log_path(home, "hello")
    imported = [{**r.to_json(), "usage": {}} for r in logs.read_log(home, "hello").executions]
    path.write_text("".join(logs.record_line(r) + "\n" for r in imported))
    with SummarizingFake() as server:
        brain = anthropic_brain(server, monkeypatch, settings)
        server.queue_count(1234)
        result = compression.compress(home, settings, "hello", brain, clock)
        counted = [r for r in server.requests if r.path.endswith("/count_tokens")]
    assert len(counted) == 1 and result.context_tokens == 1234
    assert result.status == "compressed"


# -- crash safety: SIGKILL a real process at each step ----------------------------------


POINTS = [
    "compress-archive-partial",
    "compress-after-archive",
    "compress-before-replace",
    "compress-after-replace",
]


@pytest.mark.parametrize("point", POINTS)
def test_kill_during_compress_loses_nothing(home: Home, clock: FakeClock, point: str) -> None:
    home.settings_file.write_text("compression:\n  keep_recent: 2\n")
    settings = load_settings(home.settings_file)
    brain = RecordingBrain()
    run_hello(home, settings, brain, clock, 6)
    compression.compress(home, settings, "hello", brain, clock)  # a header to fold in
    run_hello(home, settings, brain, clock, 4)
    ids = executions_ever(home, "hello")
    assert len(ids) == 10

    kill_at(home, point, "compress", "hello")
    assert_intact(home, "hello", ids)
    temps = list(home.logs.glob(".hello.jsonl.*.tmp"))
    assert bool(temps) == (point == "compress-before-replace")
    replaced = logs.read_log(home, "hello").covers == 8
    assert replaced == (point == "compress-after-replace")

    # The next run (and its compression) carries on from whatever the crash left.
    outcome = executor.run_task(home, settings, "hello", brain, clock)
    ids.append(str(outcome.record.id))
    compression.compress(home, settings, "hello", brain, clock)
    assert_intact(home, "hello", ids)
    assert list(home.logs.glob(".hello.jsonl.*.tmp")) == []
    live = logs.read_log(home, "hello")
    assert live.covers == 9 and len(live.executions) == 2


def test_kill_while_compressing_after_a_run_keeps_the_run(home: Home, clock: FakeClock) -> None:
    home.settings_file.write_text("compression:\n  max_executions: 3\n  keep_recent: 2\n")
    settings = load_settings(home.settings_file)
    run_hello(home, settings, RecordingBrain(), clock, 3)
    kill_at(home, "compress-before-replace", "run", "hello")
    assert tasks.load_task(home, "hello").state.status == "completed"
    ids = executions_ever(home, "hello")
    assert len(ids) == 4
    assert_intact(home, "hello", ids)
    outcome = executor.run_task(home, settings, "hello", RecordingBrain(), clock)
    assert outcome.compression is not None and outcome.compression.status == "compressed"
    assert_intact(home, "hello", [*ids, str(outcome.record.id)])


# -- `runner log --all` and `runner compress` ---------------------------------------------


def test_log_all_shows_each_record_once_after_a_crash_duplicated_the_archive(
    home: Home, clock: FakeClock
) -> None:
    settings = settings_with(keep_recent=2)
    brain = RecordingBrain()
    run_hello(home, settings, brain, clock, 5)
    compression.compress(home, settings, "hello", brain, clock)
    run_hello(home, settings, brain, clock, 3)
    # What a crash after the archive step leaves behind, twice over: the archive holds
    # executions that are still in the live log, and some of them twice.
    live = logs.read_log(home, "hello")
    archive = logs.archive_path(home, "hello")
    with archive.open("a", encoding="utf-8") as handle:
        for record in [*live.executions[:3], *live.executions[:3]]:
            handle.write(logs.record_line(record) + "\n")
    ids = [str(r.id) for r in logs.read_archive(home, "hello")[:3]] + [
        str(r.id) for r in live.executions
    ]
    assert len(set(ids)) == len(ids) == 8

    shown = cli(home, "log", "hello", "--all", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert [r["id"] for r in doc["executions"]] == ids
    assert live.summary is not None and doc["summary"]["id"] == live.summary.id
    text = cli(home, "log", "hello", "--all")
    assert text.returncode == 0, text.stderr
    starts = [r["started"] for r in doc["executions"]]
    assert starts == sorted(starts)
    assert [line.split()[1] for line in text.stdout.splitlines() if "  hello  " in line] == starts
    live_only = json.loads(cli(home, "log", "hello", "--json").stdout)
    assert [r["id"] for r in live_only["executions"]] == ids[3:]


def test_compress_command_exit_codes(home: Home, clock: FakeClock) -> None:
    run_hello(home, settings_with(), RecordingBrain(), clock, 3)
    unknown = cli(home, "compress", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    few = cli(home, "compress", "hello")
    assert few.returncode == 0 and "nothing to compress" in few.stdout
    # A cap of zero tokens leaves the offline brain nothing to say: an empty summary.
    home.settings_file.write_text("compression:\n  max_tokens: 1\n  keep_recent: 1\n")
    before = logs.log_path(home, "hello").read_bytes()
    failed = cli(home, "compress", "hello")
    assert failed.returncode == 1 and "unchanged" in failed.stderr
    assert logs.log_path(home, "hello").read_bytes() == before
    home.settings_file.write_text("compression:\n  keep_recent: 1\n")
    done = cli(home, "compress", "hello", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["summarised"], result["covers"]) == ("compressed", 2, 2)
