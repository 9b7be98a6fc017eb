"""Claude Code's tool calls as the runner's steps (SPEC "Agent tools", "What is recorded").

A `tool_use` block in an assistant message opens a step; the `tool_result` block
with its id (in the next user message) closes it, and the finished step goes to the
run's sink, which journals it before anything else happens. A refused call (a grant
that does not allow it, Claude Code's own denial) is a step with `is_error`. A call
still open when the run ends (a timeout, a crash of the CLI) is closed as an error,
so what the agent set out to do is never lost. Blocks are read by their fields only:
this module does not import the SDK.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.clock import utc_iso
from runner.tools.files import DEFAULT_CAP, cap_text
from runner.tools.steps import Step, StepSink

NO_RESULT = "(no result: the run ended before this call finished)"


def now() -> str:
    return utc_iso(datetime.now(UTC))


def result_text(content: Any) -> str:
    """A tool result's content (text, or a list of blocks) as text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'block')}]")
        return "\n".join(parts)
    return str(content)


PATH_ARGS = ("file_path", "path", "notebook_path")


def home_relative(args: dict[str, Any], home: Path | None) -> dict[str, Any]:
    """Claude Code names files by absolute path; the record names those in the home
    relative to it (`plans/x.md`), as the runner's own tools do, so a log says the
    same on every machine the home is cloned to."""
    if home is None:
        return args
    out = dict(args)
    for key in PATH_ARGS:
        value = out.get(key)
        if isinstance(value, str) and os.path.isabs(value):
            normal = os.path.normpath(value)
            for base in (str(home), str(home.resolve())):
                if normal.startswith(base.rstrip(os.sep) + os.sep):
                    out[key] = normal[len(base.rstrip(os.sep)) + 1 :]
                    break
    return out


class StepTracker:
    """The open calls of one run, by tool_use id, and the steps finished so far."""

    def __init__(
        self, sink: StepSink | None, home: Path | None = None, clock: Callable[[], str] = now
    ) -> None:
        self.sink = sink
        self.home = home
        self.clock = clock
        self.open: dict[str, tuple[str, dict[str, Any], str]] = {}
        self.steps: list[Step] = []

    def opened(self, block: Any) -> None:
        raw = getattr(block, "input", None)
        args = home_relative(dict(raw) if isinstance(raw, dict) else {}, self.home)
        self.open[str(block.id)] = (str(block.name), args, self.clock())

    def closed(self, block: Any) -> None:
        call = self.open.pop(str(getattr(block, "tool_use_id", "")), None)
        if call is None:
            return  # a result for a call we never saw (a subagent's): not ours to record
        text = cap_text(result_text(getattr(block, "content", None)), DEFAULT_CAP)
        self.finish(call, text, bool(getattr(block, "is_error", False)))

    def close_all(self) -> None:
        for tool_id in list(self.open):
            self.finish(self.open.pop(tool_id), NO_RESULT, True)

    def finish(self, call: tuple[str, dict[str, Any], str], output: str, is_error: bool) -> None:
        name, args, started = call
        step = Step(name, args, output, is_error, started, self.clock())
        self.steps.append(step)
        if self.sink is not None:
            self.sink(step)
