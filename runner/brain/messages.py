"""Context assembly for the Messages API (SPEC, "Context sent to the brain").

Pure functions from a BrainRequest to the `system` and `messages` parameters:

- system: the task's own `system` text, then the log's summary header;
- each prior execution as a user turn (its instructions) and an assistant turn (its
  response, or a short note that it failed and why);
- then the current prompt (the instructions with the occurrence's facts).

The API rejects two turns of one role in a row and empty text blocks, so the turns
are normalised: empty texts get a placeholder and neighbours of one role are merged.
One `cache_control` breakpoint sits on the last prior-turn block (or, with no prior
turns, on the summary header): everything before it is the same on the next run and
on the SDK's retries, so the API can serve it from its prompt cache. A run with tools
marks the end of the system prompt as well (tool_loop.py says why).

Only the types of `anthropic` are imported, for mypy: this module loads without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from runner.brain.protocol import BrainRequest, PriorTurn

if TYPE_CHECKING:
    from anthropic.types import MessageParam, TextBlockParam

Role = Literal["user", "assistant"]

SUMMARY_HEADING = "Summary of the earlier executions of this task (oldest first):"
EMPTY_INSTRUCTIONS = "(no instructions)"
EMPTY_RESPONSE = "(an empty answer)"


def failure_note(turn: PriorTurn) -> str:
    """What the model sees in place of the answer of a failed execution."""
    why = (turn.error or "").strip() or "no reason recorded"
    return f"(This execution failed and gave no answer: {why}.)"


def assistant_text(turn: PriorTurn) -> str:
    """A prior execution's answer, after a compact line per tool call it made.

    Raw tool output is never replayed, and no `tool_use` block ever goes back: the
    calls are plain text, so no request can hold a tool_use without its result.
    """
    if turn.status == "completed" or (turn.response and turn.response.strip()):
        text = turn.response or ""
        answer = text if text.strip() else EMPTY_RESPONSE
    else:
        answer = failure_note(turn)
    if not turn.steps:
        return answer
    return "\n".join(turn.steps) + "\n\n" + answer


def text_block(text: str) -> TextBlockParam:
    return {"type": "text", "text": text}


def system_blocks(request: BrainRequest) -> list[TextBlockParam]:
    """The task's system text, then the summary header; empty parts are left out."""
    blocks: list[TextBlockParam] = []
    if request.system and request.system.strip():
        blocks.append(text_block(request.system))
    if request.summary and request.summary.strip():
        blocks.append(text_block(f"{SUMMARY_HEADING}\n\n{request.summary.strip()}"))
    return blocks


def normalise(turns: Sequence[tuple[Role, str]]) -> list[MessageParam]:
    """A valid alternation starting and ending with `user`, no empty text.

    Consecutive turns of one role are merged into one message of several blocks; a
    leading assistant turn gets a user turn before it (the API requires `user` first).
    """
    messages: list[MessageParam] = []
    for role, text in turns:
        if not text.strip():
            text = EMPTY_INSTRUCTIONS if role == "user" else EMPTY_RESPONSE
        if not messages and role == "assistant":
            messages.append(_message("user", EMPTY_INSTRUCTIONS))
        if messages and messages[-1]["role"] == role:
            _blocks(messages[-1]).append(text_block(text))
        else:
            messages.append(_message(role, text))
    if not messages or messages[-1]["role"] != "user":
        messages.append(_message("user", EMPTY_INSTRUCTIONS))
    return messages


def _message(role: Role, text: str) -> MessageParam:
    if role == "user":
        return {"role": "user", "content": [text_block(text)]}
    return {"role": "assistant", "content": [text_block(text)]}


def _blocks(message: MessageParam) -> list[Any]:
    content = message["content"]
    assert isinstance(content, list)  # normalise() builds every message with a list
    return content


def build_messages(request: BrainRequest) -> list[MessageParam]:
    turns: list[tuple[Role, str]] = []
    for turn in request.history:
        turns.append(("user", turn.instructions))
        turns.append(("assistant", assistant_text(turn)))
    turns.append(("user", request.prompt))
    return normalise(turns)


def mark_cache_breakpoint(
    system: list[TextBlockParam], messages: list[MessageParam], history: bool, prefix: bool = False
) -> None:
    """Put the one breakpoint on the last prior-turn block, else on the system prompt.

    With history, the last prior-turn block is the last block of the second-to-last
    message (the last message is the current prompt, which changes every run). With
    `prefix` (a run with tools, tool_loop.py) the system prompt's end is marked too:
    the end of the tools and system prefix, shared by runs with the same grants.
    """
    if history and len(messages) >= 2:
        _blocks(messages[-2])[-1]["cache_control"] = {"type": "ephemeral"}
        if prefix and system:
            system[-1]["cache_control"] = {"type": "ephemeral"}
    elif system:
        system[-1]["cache_control"] = {"type": "ephemeral"}


def build_params(request: BrainRequest) -> tuple[list[TextBlockParam], list[MessageParam]]:
    """(system, messages) for messages.create / stream / count_tokens."""
    system = system_blocks(request)
    messages = build_messages(request)
    mark_cache_breakpoint(system, messages, bool(request.history), request.tools is not None)
    return system, messages
