"""Reading a live log from its end (issue 13, defect 8): the same header and recent
executions as reading it whole, for a log past the read-whole size."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from runner.errors import LogCorruptError
from runner.events import Event, notices_to
from runner.home import Home
from runner.logs import store as logs
from runner.logs import tail
from runner.run import executor
from runner.settings import Settings
from tests.fakes import FakeClock, RecordingBrain

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def fill(home: Home, executions: int, summary: bool, torn: bool) -> None:
    lines = []
    if summary:
        lines.append({"type": "summary", "id": "s", "created": "x", "covers": 3, "text": "H"})
    for n in range(executions):
        lines.append(
            {
                "type": "execution",
                "id": f"e{n}",
                "task": "hello",
                "status": "completed",
                "instructions": "i",
                "response": f"answer {n} " + "z" * 2000,
            }
        )
    body = "".join(json.dumps(line) + "\n" for line in lines)
    if torn:
        body += '{"type": "execution", "id": "torn", "respo'
    logs.log_path(home, "hello").write_text(body, encoding="utf-8")


@pytest.mark.parametrize("summary", [True, False])
@pytest.mark.parametrize("torn", [True, False])
@pytest.mark.parametrize("executions", [3, 3000])
def test_tail_read_equals_the_whole_read(
    home: Home, summary: bool, torn: bool, executions: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail, "BLOCK", 4096)  # many blocks, lines across block edges
    monkeypatch.setattr(tail, "READ_WHOLE", 10_000)
    fill(home, executions, summary, torn)
    whole = logs.read_log(home, "hello")
    for limit in (1, 20, executions + 5):
        recent = tail.read_recent(home, "hello", limit)
        assert recent.summary == whole.summary
        assert [r.id for r in recent.executions] == [r.id for r in whole.executions][-limit:]


def test_a_bad_line_among_the_recent_ones_is_an_error(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail, "READ_WHOLE", 10_000)
    fill(home, 50, True, False)
    path = logs.log_path(home, "hello")
    lines = path.read_text().splitlines(keepends=True)
    lines[-2] = "not json\n"
    path.write_text("".join(lines))
    with pytest.raises(LogCorruptError):
        tail.read_recent(home, "hello", 5)
    assert tail.read_recent(home, "hello", 1).executions[0].id == "e49"


def test_a_run_on_an_overgrown_log_reads_its_end_and_leaves_compression_to_the_command(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not compressed inside the run (that reads the whole log): a notice says how."""
    monkeypatch.setattr(tail, "READ_WHOLE", 10_000)
    monkeypatch.setattr(executor, "LARGE_LOG", 100_000)
    fill(home, 300, True, False)  # ~600 KB: past both limits, far past max_executions
    before = logs.log_path(home, "hello").stat().st_size
    brain = RecordingBrain()
    heard: list[Event] = []
    with notices_to(heard.append):
        outcome = executor.run_task(home, Settings(), "hello", brain, FakeClock(NOW))
    assert outcome.ok and outcome.compression is None
    [request] = brain.requests
    assert (request.history[-1].response or "").startswith("answer 299 ")
    assert len(request.history) <= Settings().compression.max_executions
    assert brain.summaries == []
    assert not logs.archive_path(home, "hello").exists()
    assert logs.log_path(home, "hello").stat().st_size > before  # only the new record
    assert any("runner compress hello" in str(getattr(e, "message", "")) for e in heard)


@pytest.mark.parametrize("count", [0, 1, 2, 7, 99, 100, 150])
def test_newest_lines_finds_where_the_newest_start(
    home: Home, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail, "BLOCK", 4096)  # lines across block edges
    fill(home, 100, True, False)
    path = logs.log_path(home, "hello")
    data = path.read_bytes()
    starts = [0, *[i + 1 for i, byte in enumerate(data) if byte == 10][:-1]]
    with open(path, "rb") as handle:
        where, seen = tail.newest_lines(handle, starts[1], len(data), count)
    if count >= 100:
        assert (where, seen) == (None, 100)
    else:
        assert (where, seen) == (starts[-count] if count else len(data), count)
