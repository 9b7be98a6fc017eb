"""Execution logs: `logs/<key>.jsonl`, one JSON record per line.

Appends are whole lines (fsutil.append_line) made under the series lock. A crash can
leave a torn last line; before the next append it is moved to `<key>.jsonl.corrupt`
so that a new record is never glued to a fragment. Readers skip a torn tail and
stop on a bad line in the middle: guessing there could lose or double history.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import LogCorruptError
from runner.fsutil import append_line, fsync_dir
from runner.home import Home
from runner.keys import check_key

log = logging.getLogger("runner")

USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


@dataclass(frozen=True)
class LogContents:
    key: str
    summary: dict[str, Any] | None = None
    executions: list[dict[str, Any]] = field(default_factory=list)

    def usage_totals(self) -> dict[str, int]:
        totals = dict.fromkeys(USAGE_KEYS, 0)
        sources = [self.summary] if self.summary else []
        for record in sources + self.executions:
            for name, value in (record.get("usage") or {}).items():
                if name in totals and isinstance(value, int):
                    totals[name] += value
        return totals

    @property
    def covers(self) -> int:
        return int(self.summary.get("covers", 0)) if self.summary else 0


def log_path(home: Home, key: str) -> Path:
    return home.logs / f"{check_key(key)}.jsonl"


def archive_path(home: Home, key: str) -> Path:
    return home.archive / f"{check_key(key)}.jsonl"


def new_record_id() -> str:
    return uuid.uuid4().hex


def append_record(home: Home, key: str, record: dict[str, Any]) -> None:
    """Append one record; the caller holds the series lock."""
    path = log_path(home, key)
    set_aside_torn_tail(path)
    append_line(path, record_line(record))


def record_line(record: dict[str, Any]) -> str:
    """One record as one log line (no newline: JSON escapes any in the text)."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


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
    log.warning("%s: torn last line (%d bytes) moved to %s", path, len(fragment), corrupt.name)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every whole record in `path`; a torn tail is skipped, a bad middle line is fatal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail.strip():
        log.warning("%s: skipping a torn last line (%d bytes)", path, len(tail))
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LogCorruptError(path, number, f"not a JSON record: {exc}") from None
        if not isinstance(record, dict) or record.get("type") not in ("summary", "execution"):
            raise LogCorruptError(path, number, "not a summary or execution record")
        records.append(record)
    return records


def read_log(home: Home, key: str) -> LogContents:
    """The live log: its summary header (if any) and the executions after it."""
    summary: dict[str, Any] | None = None
    executions: list[dict[str, Any]] = []
    for record in read_records(log_path(home, key)):
        if record["type"] == "summary":
            summary = record
        else:
            executions.append(record)
    return LogContents(key, summary, executions)


def read_archive(home: Home, key: str) -> list[dict[str, Any]]:
    """Archived executions, each once (a crash may have appended some twice)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for record in read_records(archive_path(home, key)):
        rid = str(record.get("id"))
        if record["type"] != "execution" or rid in seen:
            continue
        seen.add(rid)
        out.append(record)
    return out


def read_all(home: Home, key: str) -> LogContents:
    """Archive and live log together, in order, each execution once."""
    live = read_log(home, key)
    archived = read_archive(home, key)
    live_ids = {str(r.get("id")) for r in live.executions}
    merged = [r for r in archived if str(r.get("id")) not in live_ids] + live.executions
    return LogContents(key, live.summary, merged)
