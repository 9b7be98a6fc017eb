"""Execution logs: `logs/<key>.jsonl`, one JSON record per line.

Appends are whole lines (fsutil.append_line) made under the series lock. A crash can
leave a torn last line; before the next append it is moved to `<key>.jsonl.corrupt`
so that a new record is never glued to a fragment. Readers skip a torn tail and
stop on a bad line in the middle: guessing there could lose or double history.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.brain.protocol import Usage
from runner.errors import LogCorruptError
from runner.events import notify
from runner.fsutil import append_line, fsync_dir
from runner.home import Home
from runner.keys import check_key
from runner.logs.records import RECORD_TYPES, ExecutionRecord, LogRecord, SummaryRecord
from runner.logs.records import new_record_id as new_record_id  # tests and bench use it

USAGE_KEYS = tuple(Usage().to_dict())


@dataclass(frozen=True)
class LogContents:
    key: str
    summary: SummaryRecord | None = None
    executions: list[ExecutionRecord] = field(default_factory=list)

    def usage_totals(self) -> dict[str, int]:
        usages = [r.usage for r in ([self.summary] if self.summary else []) + self.executions]
        return {k: sum(getattr(u, k) for u in usages) for k in USAGE_KEYS}

    @property
    def covers(self) -> int:
        return self.summary.covers if self.summary else 0

    @property
    def summary_text(self) -> str | None:
        """The header's text, where there is a header with text."""
        return self.summary.text if self.summary and self.summary.text else None


def log_path(home: Home, key: str) -> Path:
    return home.logs / f"{check_key(key)}.jsonl"


def archive_path(home: Home, key: str) -> Path:
    return home.archive / f"{check_key(key)}.jsonl"


def append_record(home: Home, key: str, record: LogRecord | Mapping[str, Any]) -> None:
    """Append one record; the caller holds the series lock."""
    path = log_path(home, key)
    set_aside_torn_tail(path)
    append_line(path, record_line(record))


def record_line(record: LogRecord | Mapping[str, Any]) -> str:
    """One record as one log line (no newline: JSON escapes any in the text)."""
    data = record if isinstance(record, Mapping) else record.to_json()
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def set_aside_torn_tail(path: Path) -> None:
    """Move a last line without its newline to `<path>.corrupt` and cut it off."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Find the start of the torn line by scanning back in blocks.
        end = size
        cut = 0
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            index = block.rfind(b"\n")
            if index >= 0:
                cut = start + index + 1
                break
            end = start
        handle.seek(cut)
        fragment = handle.read()
    corrupt = path.with_name(path.name + ".corrupt")
    fd = os.open(corrupt, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, fragment + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(path.parent)
    notify(f"{path}: torn last line ({len(fragment)} bytes) moved to {corrupt.name}")


def read_records(path: Path) -> list[LogRecord]:
    """Every whole record in `path`; a torn tail is skipped, a bad middle line is fatal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail.strip():
        notify(f"{path}: skipping a torn last line ({len(tail)} bytes)")
    records: list[LogRecord] = []
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            records.append(parse_line(path, raw, number))
    return records


def parse_line(path: Path, raw: str | bytes, line: int | None = None) -> LogRecord:
    """One log line as its record; LogCorruptError (naming the line where known)."""
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LogCorruptError(path, line, f"not a JSON record: {exc}") from None
    kind = RECORD_TYPES.get(str(record.get("type"))) if isinstance(record, dict) else None
    if kind is None:
        raise LogCorruptError(path, line, "not a summary or execution record")
    return kind.from_json(record)


def read_log(home: Home, key: str) -> LogContents:
    """The live log: its summary header (if any) and the executions after it."""
    summary: SummaryRecord | None = None
    executions: list[ExecutionRecord] = []
    for record in read_records(log_path(home, key)):
        if isinstance(record, SummaryRecord):
            summary = record
        else:
            executions.append(record)
    return LogContents(key, summary, executions)


def read_archive(home: Home, key: str) -> list[ExecutionRecord]:
    """Archived executions, each once (a crash may have appended some twice)."""
    seen: set[str] = set()
    out: list[ExecutionRecord] = []
    for record in read_records(archive_path(home, key)):
        if not isinstance(record, ExecutionRecord) or record.id in seen:
            continue
        seen.add(record.id)
        out.append(record)
    return out


def read_all(home: Home, key: str) -> LogContents:
    """Archive and live log together, in order, each execution once."""
    live = read_log(home, key)
    archived = read_archive(home, key)
    live_ids = {r.id for r in live.executions}
    merged = [r for r in archived if r.id not in live_ids] + live.executions
    return LogContents(key, live.summary, merged)
