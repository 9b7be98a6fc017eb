"""Durable file primitives: atomic replace and whole-line appends.

Every write the runner makes to files outside .runner/ goes through here, so that a
crash (SIGKILL, power loss) leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from runner.testpause import write_fault


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file durable: fsync the folder entry."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path,
    data: bytes | str,
    *,
    before_replace: Callable[[], None] | None = None,
    sync_folder: bool = True,
) -> None:
    """Temp file in the same folder, fsync, replace, fsync the folder.

    `before_replace` runs once the temp file is durable and the old file still stands
    (crash tests pause there). `sync_folder=False` is for batches (a sync writing a
    thousand files) whose caller calls fsync_dir once at the end.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    atomic_write_with(
        path, lambda out: out.write(payload), before_replace=before_replace, sync_folder=sync_folder
    )


def atomic_write_with(
    path: Path,
    write: Callable[[BinaryIO], object],
    *,
    before_replace: Callable[[], None] | None = None,
    sync_folder: bool = True,
) -> None:
    """atomic_write for a body too big to hold: `write` streams it into the temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes 0600 files; keep the mode a user gave the file, else 0644.
            try:
                mode = path.stat().st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            fault = write_fault(f"replace {path.name}")
            if fault is not None:
                raise fault
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _name(exc, path)
        raise
    if sync_folder:
        fsync_dir(path.parent)


def write_whole(fd: int, data: bytes, what: str) -> None:
    """Write all of `data` (finishing a short write); the caller cuts back on OSError."""
    fault = write_fault(what)
    if fault is not None:  # tests: the error strikes half-way through
        os.write(fd, data[: len(data) // 2])
        raise fault
    written = os.write(fd, data)
    while written < len(data):
        written += os.write(fd, data[written:])


def append_line(path: Path, line: str) -> None:
    """Append one whole line with a single O_APPEND write, then fsync.

    The caller holds the log's lock; a single write() of a regular file is not torn
    by other appenders, and a crash mid-write leaves a tail without a newline, which
    the log store moves aside before the next append.
    """
    if "\n" in line:
        raise ValueError("a record line must not contain a newline")
    append_lines(path, [line.encode("utf-8")])


def append_lines(path: Path, lines: Sequence[bytes]) -> None:
    """Append whole lines (each without its newline) in one write, then one fsync.

    A full disk mid-write cuts the file back to where it was: none of the lines is
    half there.
    """
    if any(b"\n" in line for line in lines):
        raise ValueError("a record line must not contain a newline")
    data = b"".join(line + b"\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size  # the caller's lock: nobody else appends
        try:
            write_whole(fd, data, f"append {path.name}")
            os.fsync(fd)
        except OSError as exc:
            # A full disk (or an I/O error) mid-line: cut the file back to its last
            # whole line, so no half record is left for a reader (or a later append)
            # to meet. A crash here instead leaves a torn tail, set aside as before.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            _name(exc, path)
            raise
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def _name(exc: BaseException, path: Path) -> None:
    """A write() or fsync() error names no file: name the one being written, so the
    user hears which ("runner: .../logs/x.jsonl: No space left on device")."""
    if isinstance(exc, OSError) and exc.filename is None:
        exc.filename = str(path)
