"""The file side of a compression: a live log read and rewritten as a stream.

A live log may be huge (compression failing for weeks, an imported history: issue 13
measured `runner compress` at 831 MB of memory on a 200 MB log). So nothing here
holds the log: `layout` reads its first line (the summary header, if any) and,
backwards from the end, where the newest `keep_recent` executions start; `chunks`
reads the older executions forward, a chunk of bounded size at a time (each becomes
one summary request); `rewrite` streams the new live log, [new header, the lines
from `cut` on, copied byte for byte], into a temp file that atomically replaces the
old one. Memory is bounded by one chunk (and the longest line), whatever the size of
the log; compression.py decides how many chunks one pass folds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runner.errors import LogCorruptError
from runner.fsutil import atomic_write_with
from runner.logs.records import ExecutionRecord, SummaryRecord
from runner.logs.store import parse_line, record_line
from runner.logs.tail import BLOCK, first_line, newest_lines


@dataclass(frozen=True)
class Layout:
    """Where things are in a live log (byte offsets), read without reading it all."""

    header: SummaryRecord | None
    body: int  # where the executions start: after the header line, else 0
    keep: int | None  # where the newest keep_recent executions start; None: none older
    end: int  # the end of the file (the caller has set a torn tail aside)
    newest: int  # executions from `keep` on (all of them when `keep` is None)


@dataclass(frozen=True)
class Chunk:
    """Consecutive older executions: their records, their lines as they are in the
    file (without newlines), and the offset just after the last of them."""

    records: list[ExecutionRecord]
    lines: list[bytes]
    end: int


def layout(handle: BinaryIO, path: Path, keep_recent: int) -> Layout:
    end = handle.seek(0, 2)
    if end == 0:
        return Layout(None, 0, None, 0, 0)
    first, first_end = first_line(handle)
    head = parse_line(path, first, 1) if first.strip() else None
    header = head if isinstance(head, SummaryRecord) else None
    body = min(first_end, end) if header is not None else 0
    keep, newest = newest_lines(handle, body, end, keep_recent)
    return Layout(header, body, keep, end, newest)


def chunks(handle: BinaryIO, path: Path, where: Layout, max_bytes: int) -> Iterator[Chunk]:
    """The executions before `where.keep`, oldest first, in chunks of about
    `max_bytes` of lines (at least one execution each). The handle must not be moved
    while the generator is in use."""
    if where.keep is None:
        return
    handle.seek(where.body)
    offset = where.body
    number = 2 if where.header is not None else 1
    records: list[ExecutionRecord] = []
    lines: list[bytes] = []
    size = 0
    while offset < where.keep:
        raw = handle.readline()
        if not raw:
            break
        offset += len(raw)
        line = raw.rstrip(b"\n")
        if line.strip():
            record = parse_line(path, line, number)
            if not isinstance(record, ExecutionRecord):
                raise LogCorruptError(path, number, "a summary record after the first line")
            records.append(record)
            lines.append(line)
            size += len(line)
        number += 1
        if records and size >= max_bytes:
            yield Chunk(records, lines, offset)
            records, lines, size = [], [], 0
    if records:
        yield Chunk(records, lines, offset)


def rewrite(
    path: Path,
    handle: BinaryIO,
    header: SummaryRecord,
    cut: int,
    end: int,
    before_replace: Callable[[], None],
) -> int:
    """Replace the live log atomically by [header, its lines from `cut` to `end`];
    returns how many records were kept (blank lines are none)."""
    kept = 0

    def write(out: BinaryIO) -> None:
        nonlocal kept
        out.write((record_line(header) + "\n").encode("utf-8"))
        handle.seek(cut)
        left = end - cut
        carry = b""  # the start of a line the next block ends
        while left > 0:
            block = handle.read(min(BLOCK, left))
            if not block:
                break
            out.write(block)
            lines = (carry + block).split(b"\n")
            carry = lines.pop()
            kept += sum(1 for line in lines if line.strip())
            left -= len(block)
        kept += 1 if carry.strip() else 0

    atomic_write_with(path, write, before_replace=before_replace)
    return kept
