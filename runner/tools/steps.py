"""A step: one tool call of a run, as recorded (SPEC "Agent tools", "What is recorded").

`{"tool", "input", "output", "is_error", "started", "finished"}`, the output capped
as every tool result is. The compact line (`used write_file plans/2026-12-01.md`) is
what later runs see of it: raw tool output is never replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    tool: str
    input: dict[str, Any]
    output: str
    is_error: bool
    started: str
    finished: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "input": self.input,
            "output": self.output,
            "is_error": self.is_error,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        raw_input = data.get("input")
        return cls(
            tool=str(data.get("tool") or "?"),
            input=dict(raw_input) if isinstance(raw_input, Mapping) else {},
            output=str(data.get("output") or ""),
            is_error=bool(data.get("is_error")),
            started=str(data.get("started") or ""),
            finished=str(data.get("finished") or ""),
        )

    @property
    def subject(self) -> str:
        return call_subject(self.input)

    def line(self) -> str:
        """`used write_file plans/2026-12-01.md`, `(failed: ...)` after a refused call."""
        text = f"used {self.tool} {self.subject}".rstrip()
        if self.is_error:
            text += f" (failed: {_short(self.output, 120)})"
        return text


StepSink = Callable[[Step], None]


def compact_lines(steps: object) -> tuple[str, ...]:
    """The compact lines of a record's `steps` (tolerating anything a log may hold)."""
    if not isinstance(steps, list):
        return ()
    return tuple(Step.from_json(s).line() for s in steps if isinstance(s, Mapping))


def call_subject(arguments: object) -> str:
    """The one thing a call is about: its path, glob, pattern, ... or first text value."""
    if isinstance(arguments, Mapping):
        for key in ("path", "glob", "pattern", "url", "query", "name"):
            value = arguments.get(key)
            if isinstance(value, str) and value:
                return _short(value)
        for value in arguments.values():
            if isinstance(value, str) and value:
                return _short(value)
    return ""


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def size_text(n: int) -> str:
    """1.2 KB, 340 B, 2.0 MB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def step_notice(step: Step) -> str:
    """The stderr line of a call: `tool read_file notes/inbox.md (1.2 KB)`."""
    return "tool " + call_text(step.tool, step.subject, output_bytes(step), error_text(step))


def call_text(tool: str, subject: str, size: int, error: str | None) -> str:
    """`<name> <subject> (<size> | error: <why>)`. Names and paths come from the
    model: whoever shows the line escapes its control characters (render.plain)."""
    what = f"error: {error}" if error is not None else size_text(size)
    return f"{tool} {subject} ({what})".replace("  ", " ")


def output_bytes(step: Step) -> int:
    return len(step.output.encode("utf-8"))


def error_text(step: Step) -> str | None:
    """A failed call's result, short; None for a call that worked."""
    return _short(step.output, 100) if step.is_error else None
