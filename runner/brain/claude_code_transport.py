"""The SDK's transport over a CLI process the brain started itself.

The SDK accepts a transport of the caller's (`query(..., transport=)`, its public
`Transport` class); this one carries the SDK's lines to a CLI that claude_code_cli.py
started before the SDK was imported, and the CLI's lines back, as the SDK's own
subprocess transport does: one JSON message per stdout line (blank and non-JSON
lines skipped, a corrupt one an error, one message at most `MAX_LINE` bytes), stderr
line by line to a callback, and a CLI that exits non-zero a `ProcessError`.

Closing never waits long and never leaves the process behind: stdin is closed (the
CLI's signal to finish), then the CLI gets `GRACE` seconds to exit, then SIGTERM,
then SIGKILL. This module imports the SDK: import it only once the CLI is started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import anyio
from anyio.abc import Process
from claude_agent_sdk import CLIConnectionError, CLIJSONDecodeError, ProcessError, Transport

MAX_LINE = 1024 * 1024  # bytes: the SDK's own bound on one message
GRACE = 5.0  # seconds a CLI whose input was closed may take to exit, per step
VERBATIM_SINCE = (2, 1, 248)  # the first CLI that delivers a prompt as written

GONE = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)

log = logging.getLogger("runner.brain")


class CLITransport(Transport):
    def __init__(self, process: Process, cli: str, grace: float = GRACE) -> None:
        self.process = process
        self.cli = cli
        self.grace = grace
        self.ready = process.stdin is not None
        self.lock = anyio.Lock()
        self.version_checked = False

    async def connect(self) -> None:
        """Nothing to do: the process runs already."""

    def is_ready(self) -> bool:
        return self.ready

    async def write(self, data: str) -> None:
        async with self.lock:
            stdin = self.process.stdin
            if not self.ready or stdin is None:
                raise CLIConnectionError("the CLI's input is closed")
            if self.process.returncode is not None:
                code = self.process.returncode
                raise CLIConnectionError(f"Cannot write to terminated process (exit code: {code})")
            try:
                await stdin.send(data.encode("utf-8"))
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                self.ready = False
                raise CLIConnectionError(f"Failed to write to process stdin: {exc}") from exc

    async def end_input(self) -> None:
        async with self.lock:
            await self.close_input()

    async def close_input(self) -> None:
        self.ready = False
        if self.process.stdin is not None:
            with suppress(*GONE):
                await self.process.stdin.aclose()

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        return self.messages()

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        assert self.process.stdout is not None
        async for line in lines(self.process.stdout):
            message = parse(line)
            if message is not None:
                self.check_version(message)
                yield message
        code = await self.process.wait()
        if code:
            raise ProcessError(
                f"Command failed with exit code {code}",
                exit_code=code,
                stderr="Check stderr output for details",
            )

    async def close(self) -> None:
        """Bounded: stdin closed, then up to GRACE s each for exit, SIGTERM, SIGKILL."""
        # Cancelled (Ctrl-C, shutdown), no answer is awaited: no grace for the turn to
        # finish, SIGTERM at once (the CLI then ends what it started).
        stops = [self.process.terminate, self.process.kill]
        steps = stops if being_cancelled() else [None, *stops]
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.grace):
                await self.lock.acquire()
                self.lock.release()
            await self.close_input()
            for stop in steps:
                if self.process.returncode is not None:
                    break
                if stop is not None:
                    with suppress(ProcessLookupError):
                        stop()
                with anyio.move_on_after(self.grace):
                    await self.process.wait()
            await self.drain()

    async def drain(self) -> None:
        """Read stdout to its end: a pipe left with unread output is never closed by
        asyncio (it stops reading when its buffer is full), and is then reported as
        left open when the event loop ends. The CLI has exited: the end is near."""
        stdout = self.process.stdout
        if stdout is None:
            return
        with anyio.move_on_after(self.grace), suppress(*GONE):
            async for _ in stdout:
                pass
        with suppress(*GONE):
            await stdout.aclose()

    def check_version(self, message: dict[str, Any]) -> None:
        """As the SDK does: say when the CLI is too old to deliver prompts as written."""
        if self.version_checked or (message.get("type"), message.get("subtype")) != (
            "system",
            "init",
        ):
            return
        self.version_checked = True
        version = str(message.get("claude_code_version"))
        found = re.match(r"(\d{1,9})\.(\d{1,9})\.(\d{1,9})", version)
        if found is None or tuple(int(x) for x in found.groups()) < VERBATIM_SINCE:
            log.warning(
                "Claude Code %s at %s expands @path mentions and /commands in prompts; "
                "2.1.248 or later delivers them as written",
                version,
                self.cli,
            )


def being_cancelled() -> bool:
    """Whether the task closing the transport is being cancelled (asyncio)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return False
    return task is not None and task.cancelling() > 0


async def lines(stream: Any, limit: int = MAX_LINE) -> AsyncIterator[str]:
    """The lines of a byte stream, however its chunks fall; a line over `limit` is an
    error (as in the SDK), and a last line without its newline still counts."""
    pending: list[bytes] = []
    size = 0
    with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        async for chunk in stream:
            *done, rest = chunk.split(b"\n")
            for part in done:
                line = b"".join([*pending, part])
                pending, size = [], 0
                yield too_long(line, limit).decode("utf-8", errors="replace")
            pending.append(rest)
            size += len(rest)
            too_long(b"", limit, size)
    if tail := b"".join(pending):
        yield too_long(tail, limit).decode("utf-8", errors="replace")


def too_long(line: bytes, limit: int, size: int | None = None) -> bytes:
    length = len(line) if size is None else size
    if length > limit:
        error = ValueError(f"Buffer size {length} exceeds limit {limit}")
        message = f"JSON message exceeded maximum buffer size of {limit} bytes"
        raise CLIJSONDecodeError(message, error)
    return line


def parse(line: str) -> dict[str, Any] | None:
    """One line of the CLI's stdout: a message, or None for what carries none."""
    line = line.strip()
    if not line.startswith("{"):
        if line:
            log.debug("claude-code: not a message on stdout: %s", line[:200])
        return None
    try:
        message: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CLIJSONDecodeError(line, exc) from exc
    return message


async def read_stderr(process: Process, on_line: Callable[[str], None]) -> None:
    """Hand each line of the CLI's stderr to `on_line` until the stream ends."""
    if process.stderr is None:
        return
    async for line in lines(process.stderr, limit=1 << 62):
        if line.strip():
            on_line(line.rstrip())
