"""The offline brain: no network, deterministic, and honest about being offline.

It reports what it received, so a user can check the schedule and the context a
real model would get before spending tokens. Token counts are an estimate: one
token per four characters (rounded up), the rule of thumb for English text.
"""

from __future__ import annotations

import math

from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink, Usage
from runner.settings import BrainSettings
from runner.tasks.grants import describe

OFFLINE_MODEL = "offline"


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def request_text(request: BrainRequest) -> str:
    parts = [request.system or "", request.summary or "", request.prompt]
    for turn in request.history:
        parts += [turn.instructions, turn.response or turn.error or ""]
    return "\n".join(parts)


def tools_text(request: BrainRequest) -> str:
    """The tools a real model would be offered in this run, and the grants behind them,
    so permissions can be checked before spending tokens."""
    names = [spec.name for spec in request.tools.specs()] if request.tools else []
    if not names:
        why = f" ({request.grants_source})" if request.grants_source.startswith("none") else ""
        return f"Tools offered: none{why}\n"
    lines = [f"Tools offered: {', '.join(names)}\n"]
    source = f" in {request.grants_source}" if request.grants_source else ""
    lines.append(f"Granted{source}: {'; '.join(describe(request.grants))}\n")
    return "".join(lines)


class OfflineBrain:
    name = "offline"

    def __init__(self, settings: BrainSettings | None = None) -> None:
        pass  # nothing to configure: the registry passes every brain its settings

    def describe(self, model: str | None = None) -> str:
        return self.name  # no model is called, whatever the task names

    def warm(self) -> None:
        pass

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        first_line = next((ln.strip() for ln in request.prompt.splitlines() if ln.strip()), "")
        completed = sum(1 for t in request.history if t.status == "completed")
        text = (
            "[offline brain] No model was called.\n"
            f"Session: {request.session_id}\n"
            f"Prior executions in context: {len(request.history)} ({completed} completed)\n"
            f"Summary header: {'yes' if request.summary else 'no'}\n"
            f"First line of instructions: {first_line}\n" + tools_text(request)
        )
        if on_text is not None:
            for line in text.splitlines(keepends=True):
                on_text(line)
        usage = Usage(
            input_tokens=estimate_tokens(request_text(request)),
            output_tokens=estimate_tokens(text),
        )
        return BrainReply(text=text, model=OFFLINE_MODEL, usage=usage, stop_reason="end_turn")

    def count_tokens(self, request: BrainRequest) -> int:
        return estimate_tokens(request_text(request))

    def summarize(self, request: SummaryRequest) -> BrainReply:
        """An extractive summary, so compression can be tested without a model.

        The previous summary's lines, then each distinct non-empty line of the
        summarised executions' instructions and tool calls (`used write_file x.md`),
        verbatim, in first-seen order; the oldest
        lines are dropped first to stay within `request.cap_tokens`.
        """
        lines: list[str] = []
        seen: set[str] = set()
        sources = [request.previous_summary or ""]
        for turn in request.executions:  # its instructions, then a line per tool call
            sources += [turn.instructions, *turn.steps]
        for text in sources:
            for line in text.splitlines():
                if line.strip() and line not in seen:
                    seen.add(line)
                    lines.append(line)
        # Keep the newest lines that fit, counting from the end so this stays linear;
        # `length` is len("\n".join(kept)), measured as estimate_tokens measures text.
        kept: list[str] = []
        length = 0
        for line in reversed(lines):
            grown = length + len(line) + (1 if kept else 0)
            if math.ceil(grown / 4) > request.cap_tokens:
                break
            kept.append(line)
            length = grown
        text = "\n".join(reversed(kept))
        usage = Usage(
            input_tokens=estimate_tokens(request.system + "\n" + request.prompt),
            output_tokens=estimate_tokens(text),
        )
        return BrainReply(text=text, model=OFFLINE_MODEL, usage=usage, stop_reason="end_turn")
