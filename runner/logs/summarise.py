"""Summarising the older executions of a live log, chunk after chunk, into its header.

One summary request folds one chunk (fold.chunks: about 8 x max_tokens bytes of log
lines) and the header before it; a pass makes at most PASS_CHUNKS of them, and stops
starting new ones after PASS_SECONDS (the series lock is held meanwhile), then
compression.py commits what was folded. Each chunk is archived as soon as its summary
is made, so by the time the live log is replaced every folded execution is in the
archive (the order compression.py's docstring gives).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import BinaryIO

from runner.brain.context import summary_request
from runner.brain.protocol import Brain, Usage
from runner.clock import Clock, utc_iso
from runner.errors import BrainError, RunnerError
from runner.events import notify
from runner.fsutil import append_lines
from runner.home import Home
from runner.logs import fold
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord, SummaryRecord, new_record_id
from runner.settings import Settings
from runner.testpause import pause_point

PASS_CHUNKS = 64  # summary requests one pass makes at most before it commits
PASS_SECONDS = 120.0  # nor does it start one after this long (a slow API)


def pause(name: str, number: int) -> None:
    """A crash test's pause point, in any pass (`name`) or in one (`name#3`)."""
    pause_point(name)
    pause_point(f"{name}#{number}")


def chunk_bytes(settings: Settings) -> int:
    """The size of the log lines one summary request folds: about twice the context
    that makes a compression (4 bytes a token), so a normal one is one request."""
    return 8 * settings.compression.max_tokens


@dataclass
class Folded:
    """What the chunks of one pass came to: the header, how many executions it now
    covers in addition, where the unfolded lines start, and what went wrong."""

    header: SummaryRecord
    count: int = 0
    cut: int = 0
    error: str | None = None
    warning: str | None = None


def fold_chunks(
    home: Home,
    settings: Settings,
    key: str,
    brain: Brain,
    clock: Clock,
    handle: BinaryIO,
    where: fold.Layout,
    number: int = 1,
) -> Folded:
    """Summarise chunk after chunk, each into the header, archiving each chunk once
    its summary is made; stop at the pass's bounds or a failure."""
    previous = where.header
    done = Folded(header=previous or SummaryRecord(), cut=where.body)
    started = time.monotonic()
    archive = logs.archive_path(home, key)
    logs.set_aside_torn_tail(archive)
    path = logs.log_path(home, key)
    for count, chunk in enumerate(fold.chunks(handle, path, where, chunk_bytes(settings)), 1):
        contents = logs.LogContents(key, previous)
        try:
            reply = brain.summarize(summary_request(settings, contents, chunk.records))
            text = reply.text.strip()
            if not text:
                raise BrainError("the brain returned an empty summary")
        except RunnerError as exc:
            done.error = exc.message
            break
        if reply.stop_reason == "max_tokens":
            done.warning = "the summary hit brain.max_tokens and may be cut short"
            notify(f"{key}: {done.warning}")
        # The archive first: from here on these executions are in two places.
        append_lines(archive, chunk.lines)
        if count == 1:
            pause("compress-archive-partial", number)
        previous = summary_record(contents, chunk.records, text, clock)
        done.header, done.count, done.cut = previous, done.count + len(chunk.records), chunk.end
        if count >= PASS_CHUNKS or time.monotonic() - started > PASS_SECONDS:
            break
    pause("compress-after-archive", number)
    return done


def summary_record(
    contents: logs.LogContents, older: list[ExecutionRecord], text: str, clock: Clock
) -> SummaryRecord:
    """The new header: covers and usage fold in the previous header's."""
    totals = logs.LogContents(contents.key, contents.summary, older).usage_totals()
    return SummaryRecord(
        id=new_record_id(),
        created=utc_iso(clock.now()),
        covers=contents.covers + len(older),
        usage=Usage.from_dict(totals),
        text=text,
    )
