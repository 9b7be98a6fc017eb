"""Compression in bounded passes (issue 13): a huge backlog is folded chunk after
chunk, pass after pass, each pass atomic; a SIGKILL in any pass loses nothing and
doubles nothing; the lines kept are copied byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from runner.brain.offline import OfflineBrain
from runner.brain.protocol import BrainReply, SummaryRequest
from runner.errors import BrainError
from runner.home import Home
from runner.logs import compression, fold, summarise
from runner.logs import store as logs
from runner.settings import CompressionSettings, Settings
from tests.fakes import FakeClock

from .conftest import cli, kill_at

COUNT = 200
KEEP = 2
# 8 x 50 bytes a chunk: one execution a summary request, 64 a pass, so 198 to fold
# take four passes (64, 64, 64, 6). The cap (25 tokens) keeps a short line or two.
SETTINGS_YAML = f"compression:\n  max_tokens: 50\n  keep_recent: {KEEP}\n"
SETTINGS = Settings(compression=CompressionSettings(max_tokens=50, keep_recent=KEEP))


def backlog(home: Home, count: int = COUNT) -> list[str]:
    """A live log of `count` executions and no header, written as another tool (or an
    older version) might: compact JSON, which the rewrite must keep byte for byte."""
    ids = [f"{n:032x}" for n in range(count)]
    lines = [
        json.dumps(
            {
                "type": "execution",
                "id": ident,
                "task": "hello",
                "started": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z",
                "status": "completed",
                "instructions": f"Day {n}.",
                "response": "An answer. " * 20,
                "usage": {"input_tokens": 1, "output_tokens": 2},
            },
            separators=(",", ":"),
        )
        for n, ident in enumerate(ids)
    ]
    logs.log_path(home, "hello").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def archived_lines(home: Home) -> list[str]:
    path = logs.archive_path(home, "hello")
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def assert_whole(home: Home, ids: list[str]) -> None:
    """Each execution once across live and archive (as readers count), the header's
    `covers` exact, and nothing in both places once the compression is done."""
    assert [str(r.id) for r in logs.read_all(home, "hello").executions] == ids
    live = logs.read_log(home, "hello")
    assert live.covers + len(live.executions) == len(ids)
    assert live.covers == len({json.loads(line)["id"] for line in archived_lines(home)})


def test_a_backlog_is_folded_in_passes(home: Home) -> None:
    ids = backlog(home)
    original = logs.log_path(home, "hello").read_text(encoding="utf-8").splitlines()
    brain = _Counting()
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=UTC))
    result = compression.compress(home, SETTINGS, "hello", brain, clock)
    assert (result.status, result.passes) == ("compressed", 4)
    assert (result.executions, result.summarised, result.kept) == (COUNT, COUNT - KEEP, KEEP)
    assert result.covers == COUNT - KEEP
    assert brain.summaries == COUNT - KEEP  # one execution a request at this max_tokens
    assert_whole(home, ids)
    # Archived and kept lines are the very bytes they were.
    assert archived_lines(home) == original[: COUNT - KEEP]
    live = logs.log_path(home, "hello").read_text(encoding="utf-8").splitlines()
    assert live[1:] == original[-KEEP:]
    again = compression.compress(home, SETTINGS, "hello", brain, clock)
    assert again.status == "nothing" and again.executions == KEEP


@pytest.mark.parametrize(
    ("point", "covers_after_kill"),
    [
        ("compress-archive-partial#2", 64),  # pass 2 has archived its first chunk
        ("compress-after-archive#3", 128),  # pass 3 has archived all it folded
        ("compress-before-replace#2", 64),  # pass 2's new log is written, not in place
        ("compress-after-replace#3", 192),  # three passes done, one to go
    ],
)
def test_a_kill_in_a_later_pass_loses_and_doubles_nothing(
    home: Home, point: str, covers_after_kill: int
) -> None:
    ids = backlog(home)
    home.settings_file.write_text(SETTINGS_YAML, encoding="utf-8")
    kill_at(home, point, "compress", "hello")
    assert logs.read_log(home, "hello").covers == covers_after_kill  # passes before it stand
    assert [str(r.id) for r in logs.read_all(home, "hello").executions] == ids
    live = logs.read_log(home, "hello")
    assert live.covers + len(live.executions) == COUNT

    done = cli(home, "compress", "hello", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["covers"] == COUNT - KEEP
    assert_whole(home, ids)
    assert list(home.logs.glob(".hello.jsonl.*.tmp")) == []
    kept = {str(r.id) for r in logs.read_log(home, "hello").executions}
    assert kept == set(ids[-KEEP:]) and not kept & {
        json.loads(x)["id"] for x in archived_lines(home)
    }


def test_a_failure_in_a_later_chunk_keeps_what_was_folded(home: Home) -> None:
    ids = backlog(home, 20)
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=UTC))
    result = compression.compress(home, SETTINGS, "hello", _Counting(fail_from=6), clock)
    assert (result.status, result.summarised, result.covers) == ("failed", 5, 5)
    assert result.error is not None and "exploded" in result.error
    assert compression.last_failure(home, "hello") is not None  # the next run tries again
    assert [str(r.id) for r in logs.read_all(home, "hello").executions] == ids
    assert logs.read_log(home, "hello").covers == 5
    done = compression.compress(home, SETTINGS, "hello", _Counting(), clock)
    assert done.status == "compressed" and done.covers == 20 - KEEP
    assert_whole(home, ids)
    assert compression.last_failure(home, "hello") is None


def test_chunks_are_bounded_and_cover_the_older_lines(home: Home) -> None:
    backlog(home, 50)
    path = logs.log_path(home, "hello")
    longest = max(len(line) for line in path.read_bytes().splitlines())
    with open(path, "rb") as handle:
        where = fold.layout(handle, path, 5)
        parts = list(fold.chunks(handle, path, where, 3000))
    assert where.keep is not None and where.newest == 5
    assert all(sum(map(len, c.lines)) < 3000 + longest for c in parts)
    assert len(parts) > 3
    assert sum(len(c.records) for c in parts) == 45
    assert parts[-1].end == where.keep


def test_the_pass_bound_is_the_number_of_chunks() -> None:
    assert summarise.PASS_CHUNKS == 64  # the passes the tests above expect
    assert summarise.chunk_bytes(SETTINGS) == 400


class _Counting(OfflineBrain):
    """The offline brain, counting summary requests; failing from the nth on."""

    def __init__(self, fail_from: int | None = None) -> None:
        super().__init__()
        self.summaries = 0
        self.fail_from = fail_from

    def summarize(self, request: SummaryRequest) -> BrainReply:
        self.summaries += 1
        if self.fail_from is not None and self.summaries >= self.fail_from:
            raise BrainError("the summary server exploded")
        return super().summarize(request)


def test_blank_lines_in_the_log_end_the_passes(home: Home) -> None:
    # Blank lines are no executions: counting them as kept ones made `runner
    # compress` start pass after pass that folded nothing, forever.
    ids = backlog(home, 9)
    path = logs.log_path(home, "hello")
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n" + "\n\n".join(lines) + "\n  \n", encoding="utf-8")
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=UTC))
    result = compression.compress(home, SETTINGS, "hello", _Counting(), clock)
    assert (result.status, result.summarised, result.kept) == ("compressed", 9 - KEEP, KEEP)
    assert_whole(home, ids)
