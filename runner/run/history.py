"""Has this occurrence run? The log says; claims under .runner/ say it fast.

A task file can be reverted by an editor or a sync to an older copy saying
`pending`, so it cannot be the truth about whether an occurrence ran: the series log
is (live log, plus the archive once compression has moved records there). A claim
file `.runner/claims/<series-key>/<stamp>` is written when an occurrence reaches a
final state, so the common check is one stat; when .runner/ is deleted the log
answers instead. Retry timing lives here too, derived from the log's failed records.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from runner.clock import parse_utc_iso
from runner.fsutil import atomic_write
from runner.home import Home
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord
from runner.tasks.files import TaskStatus, check_task_id

RETRY_BASE = 30.0  # seconds; the n-th retry waits 30 s × 2^(n−1), ±20 %
FINAL = (TaskStatus.COMPLETED, TaskStatus.SKIPPED)


def claim_path(home: Home, task_id: str) -> Path:
    key, _, stamp = check_task_id(task_id).partition("/")
    return home.state / "claims" / key / (stamp or "_")


def read_claim(home: Home, task_id: str) -> str | None:
    try:
        text = claim_path(home, task_id).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text in FINAL else None


def write_claim(home: Home, task_id: str, status: str) -> None:
    """Best effort: a lost claim only means the log is read next time."""
    with contextlib.suppress(OSError):
        atomic_write(claim_path(home, task_id), status + "\n")


def retry_delay(task_id: str, attempts: int) -> float:
    """30 s × 2^(attempts−1) ±20 %; the jitter is a hash of the task and attempt,
    so every process (tick, watch) computes the same time."""
    digest = hashlib.sha256(f"{task_id}#{attempts}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    return float(RETRY_BASE * 2 ** max(attempts - 1, 0) * (0.8 + 0.4 * fraction))


@dataclass(frozen=True)
class History:
    """What the log says about one task: its executions, in order."""

    attempts: int = 0
    completed: bool = False
    last_finished: datetime | None = None
    retryable: bool = True

    def retry_at(self, task_id: str) -> datetime | None:
        if self.last_finished is None:
            return None
        return self.last_finished + timedelta(seconds=retry_delay(task_id, self.attempts))


class SeriesBook:
    """The log of one series, read once and grouped by task (archive read lazily)."""

    def __init__(self, home: Home, key: str) -> None:
        self.home = home
        self.key = key
        contents = logs.read_log(home, key)
        self._compressed = contents.summary is not None
        self._by_task = _group(contents.executions)
        self._archive_read = False

    def history(self, task_id: str) -> History:
        records = self._by_task.get(task_id)
        # The archive holds what compression moved out of the live log: an earlier
        # attempt, or the completed record of a run that crashed before its state
        # write. So unless the live log already says "completed", a compressed
        # series asks the archive too (once per book; a never-compressed log has
        # every record live, see recovery._recorded).
        done = records is not None and any(r.completed for r in records)
        if not done and self._compressed and not self._archive_read:
            self._archive_read = True
            self._by_task = _group(logs.read_all(self.home, self.key).executions)
            records = self._by_task.get(task_id)
        if not records:
            return History()
        last = records[-1]
        finished: datetime | None = None
        with contextlib.suppress(TypeError, ValueError):
            finished = parse_utc_iso(last.finished)
        return History(
            attempts=len(records),
            completed=any(r.completed for r in records),
            last_finished=finished,
            retryable=last.may_retry,
        )


def _group(records: list[ExecutionRecord]) -> dict[str, list[ExecutionRecord]]:
    out: dict[str, list[ExecutionRecord]] = {}
    for record in records:
        out.setdefault(record.task, []).append(record)
    return out
