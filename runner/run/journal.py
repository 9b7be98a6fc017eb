"""The step journal of a run in progress: `.runner/runs/<execution id>.jsonl`.

Each finished tool call is appended as one whole line the moment it returns, before
the model hears its result. If the process dies mid-loop, the recovery of its task
reads the journal into the `interrupted` record, so what the agent already did (a
file written, a server called) is never lost, and the retry's context says it was
done. Once the run's record is in the log the journal is removed.

The execution id is derived from the task id, the run's start time and its attempt
number (uuid5), so recovery finds the journal from the task file's state alone.

Durability without waiting for the disk (bench/bench_tools.py: an fsync took 4 ms of
an 8 ms step on a busy machine). The journal stays open for the whole run; a step's
line is written with one O_APPEND write() and its fdatasync then runs in a helper
thread while the loop sends the next request:
- a SIGKILL at any moment after the write() keeps the line: it is in the page cache,
  which outlives the process (tests/test_journal.py kills one right there);
- before the next line is written, and before the run's record is appended
  (`close`), the previous sync is waited for: lines reach the disk in order, and the
  record never overtakes its steps. Power loss can only take the newest step whose
  sync was still running, the same window as a synchronous fsync in flight;
- a failed sync is raised (an OSError naming the journal) at that next wait, so the
  run fails loudly instead of trusting a line the disk may have dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from runner.events import notify
from runner.fsutil import fsync_dir, write_whole
from runner.home import Home
from runner.testpause import pause_point
from runner.tools.steps import Step

_NAMESPACE = uuid.UUID("6f1d3c2e-8a41-4b7e-9c55-2d7e0b1a9f30")

# fdatasync flushes the data and the size (what a reader needs), not the mtime.
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def execution_id(task_id: str, started: str, attempt: int) -> str:
    """The id of a run: the same for the run and for its recovery, unique per attempt."""
    return uuid.uuid5(_NAMESPACE, f"{task_id}\n{started}\n{attempt}").hex


def journal_path(home: Home, exec_id: str) -> Path:
    return home.state / "runs" / f"{exec_id}.jsonl"


def step_line(step: Step) -> bytes:
    text = json.dumps(step.to_json(), ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")  # json.dumps never emits a raw newline


class Journal:
    """The open journal of one run: `append` each step, `close` before the record.

    Thread-safe (the watch runs a brain call in a helper thread). After `close`, an
    append is ignored: the run's record is written, and a loop left running in an
    abandoned thread must not leave a new journal behind it.
    """

    def __init__(self, path: Path, sync: Callable[[int], None] = _datasync) -> None:
        self.path = path
        self._sync = sync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._created = False
        self._pending: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, step: Step) -> bool:
        """Write the step's line; False (nothing written) once the journal is closed."""
        data = step_line(step)
        with self._lock:
            if self._closed:
                return False
            self._wait()  # the previous line is durable before this one is written
            fd = self._open()
            try:
                write_whole(fd, data, "journal step")
            except OSError:
                # A full disk mid-line: cut back to the last whole line, so recovery
                # meets no half step (a crash here leaves a torn tail it drops).
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._size)
                raise
            self._size += len(data)
            pause_point("journal-after-write")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal-sync")
            self._pending = self._pool.submit(self._durable, fd, self._created)
            self._created = False
        return True

    def sync(self) -> None:
        """Wait until every appended line is on disk; raises if a sync failed."""
        with self._lock:
            self._wait()

    def close(self) -> None:
        """Wait for the last sync (raising its failure), then release the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._wait()
            finally:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                if self._pool is not None:
                    self._pool.shutdown(wait=True)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _durable(self, fd: int, created: bool) -> None:
        try:
            self._sync(fd)
            if created:
                fsync_dir(self.path.parent)  # the new file's name, too
        except OSError as exc:
            raise OSError(
                exc.errno, f"the step journal could not be synced: {exc.strerror}", str(self.path)
            ) from exc

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()


def read_steps(home: Home, exec_id: str) -> list[Step]:
    """The steps a journal holds; a torn last line (a crash mid-append) is dropped."""
    path = journal_path(home, exec_id)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    steps: list[Step] = []
    # Split at "\n" only: a step's text may hold U+2028 or U+0085 unescaped, which
    # str.splitlines() would take for line ends (and drop the rest as torn).
    # The last piece is "" or a crash's half line (torn mid-write): dropped.
    for number, line in enumerate(text.split("\n")[:-1], 1):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            notify(f"{path}:{number}: not a step; skipped")
            continue
        if isinstance(data, dict):
            steps.append(Step.from_json(data))
    return steps


def remove_journal(home: Home, exec_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(home, exec_id).unlink()
