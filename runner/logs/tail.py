"""Reading a live log from its end: what a run needs, at a cost that does not grow
with the log (issue 13: a 200 MB live log made `run` read and parse all of it).

A run's context is the summary header and the recent executions. The header, when
there is one, is the first line (compression writes [header, recent executions]);
the recent executions are the last lines. So the first line is read, then blocks
from the end until `limit` executions are in hand. "Recent" is bounded by
`compression.max_executions`: after every run the log is compressed once it holds
more, so a healthy live log never holds more than that and is read whole; only an
overgrown one (compression failing, or an imported log) is cut, to its newest
executions. Small files take the plain path (store.read_log), whose errors name
the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from runner.events import notify
from runner.home import Home
from runner.logs.records import ExecutionRecord, SummaryRecord
from runner.logs.store import LogContents, log_path, parse_line, read_log

BLOCK = 1 << 20
READ_WHOLE = 4 << 20  # below this size the whole file is read (and errors get lines)


def read_recent(home: Home, key: str, limit: int) -> LogContents:
    """The summary header (if any) and the newest `limit` executions of the live log."""
    path = log_path(home, key)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, in every case
    except FileNotFoundError:
        return LogContents(key)
    with handle:
        size = handle.seek(0, 2)
        if size <= READ_WHOLE:
            contents = read_log(home, key)
            return LogContents(key, contents.summary, contents.executions[-max(limit, 1) :])
        first, first_end = first_line(handle)
        head = parse_line(path, first)
        summary = head if isinstance(head, SummaryRecord) else None
        start = first_end if summary is not None else 0
        end = _whole_lines_end(handle, size, path)
        executions: list[ExecutionRecord] = []
        for _, raw in _lines_backwards(handle, start, end):
            if len(executions) >= max(limit, 1):
                break
            record = parse_line(path, raw)
            if isinstance(record, ExecutionRecord):
                executions.append(record)
    executions.reverse()
    return LogContents(key, summary, executions)


def first_line(handle: BinaryIO) -> tuple[bytes, int]:
    """The first line (without its newline) and the offset just after it."""
    handle.seek(0)
    parts: list[bytes] = []
    while True:
        block = handle.read(BLOCK)
        if not block:
            break
        cut = block.find(b"\n")
        if cut >= 0:
            parts.append(block[:cut])
            break
        parts.append(block)
    line = b"".join(parts)
    return line, len(line) + 1


def _whole_lines_end(handle: BinaryIO, size: int, path: Path) -> int:
    """The offset just after the last newline: a torn last line is skipped."""
    end = size
    while end > 0:
        start = max(0, end - BLOCK)
        handle.seek(start)
        block = handle.read(end - start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            whole = start + cut + 1
            if whole < size:
                notify(f"{path}: skipping a torn last line ({size - whole} bytes)")
            return whole
        end = start
    return 0


def newest_lines(handle: BinaryIO, start: int, end: int, count: int) -> tuple[int | None, int]:
    """(where the newest `count` non-empty lines of [start, end) begin, how many lines
    that is): the offset is None when there are no more lines than that, i.e. nothing
    older to fold."""
    seen = 0
    first = end
    for offset, _ in _lines_backwards(handle, start, end):
        if seen == count:
            return first, seen
        seen += 1
        first = offset
    return None, seen


def _lines_backwards(handle: BinaryIO, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of the non-empty lines in [start, end), newest first."""
    buffer = b""
    position = end
    while position > start:
        step = min(BLOCK, position - start)
        position -= step
        handle.seek(position)
        buffer = handle.read(step) + buffer
        parts = buffer.split(b"\n")
        buffer = parts[0]
        offset = position + len(buffer) + 1  # where parts[1] starts
        starts = []
        for raw in parts[1:]:
            starts.append(offset)
            offset += len(raw) + 1
        for at, raw in zip(reversed(starts), reversed(parts[1:]), strict=True):
            if raw.strip():
                yield at, raw
    if buffer.strip():
        yield start, buffer
