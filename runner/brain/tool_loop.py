"""The tool-use loop of one run (SPEC "Agent tools", "The loop"), over any Messages API
sender: the Anthropic brain passes its streaming SDK call.

Each round trip sends the conversation; the model's `tool_use` blocks are executed in
order through the run's toolset, each finished call handed to `on_step` (which
journals it durably before anything else happens), and every result goes back in one
user message, so a request never holds a `tool_use` without its `tool_result`. The
loop ends when the model answers without a tool call, or fails the run with error
`max_turns` (that many round trips and it still asks for tools) or `max_run_tokens`
(the round trips' summed usage passed the limit), both not retryable.

Prompt caching. The API allows four `cache_control` breakpoints per request; a run
with tools uses them all, deliberately:
  1. the end of the tools and system prefix (the last system block, or the last tool
     definition when there is no system text): the same in every run with these
     grants and this system text, so it is read from the cache by the runs of other
     tasks in the same burst (a tick) and after a compression rewrote the history;
  2. the last prior-turn block (set by messages.py): fixed, so the series' unchanged
     context is read from the cache across runs (when within the cache's lifetime);
  3. the newest block of the conversation: moves on every round trip, so everything
     this request sends is written to the cache for the next one;
  4. the previous round trip's newest block: kept one round longer, because the API
     looks back only about 20 blocks from a breakpoint for an earlier cache entry, and
     one round trip may add more blocks than that (many parallel tool calls).
Older moving breakpoints are removed, never left to pile up. Without history there is
no 2 (three in all). With 3 and 4, every request of the loop finds all it sent before
in the cache: bench/bench_tools.py measures that each request's cached share equals the
share sent in an earlier request; what is left is the newest round trip itself (the
model's tool calls and their results), which no breakpoint can have cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runner.brain.protocol import BrainReply, BrainRequest, RunStopped, Usage
from runner.clock import utc_iso
from runner.errors import BrainError
from runner.testpause import pause_point
from runner.tools.base import ToolOutput, ToolProvider, ToolSpec
from runner.tools.steps import Step

if TYPE_CHECKING:
    from anthropic.types import MessageParam, ToolParam

MAX_TURNS = "max_turns"
MAX_RUN_TOKENS = "max_run_tokens"
MOVING_BREAKPOINTS = 2  # the newest block and the previous round trip's newest

Sender = Callable[["list[MessageParam]", "list[ToolParam]"], Any]


def tool_params(specs: list[ToolSpec], mark_last: bool = False) -> list[ToolParam]:
    """The tool definitions, built once per run; `mark_last` puts breakpoint 1 on the
    last one (a request without system text: see the module docstring)."""
    params: list[ToolParam] = [
        {"name": s.name, "description": s.description, "input_schema": s.input_schema}
        for s in specs
    ]
    if mark_last and params:
        params[-1]["cache_control"] = {"type": "ephemeral"}
    return params


def usage_of(message: Any) -> Usage:
    u = message.usage
    return Usage(
        input_tokens=int(u.input_tokens or 0),
        output_tokens=int(u.output_tokens or 0),
        cache_read_input_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
        cache_creation_input_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
    )


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def assistant_blocks(message: Any) -> list[Any]:
    """The model's reply as it goes back in the next request (text and tool_use)."""
    blocks: list[Any] = []
    for block in message.content:
        if block.type == "text" and block.text:
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
    return blocks


class Breakpoints:
    """The moving cache breakpoints of one run (see the module docstring)."""

    def __init__(self) -> None:
        self.moving: list[dict[str, Any]] = []

    def move(self, messages: list[MessageParam]) -> None:
        content = messages[-1]["content"]
        if not isinstance(content, list) or not content:
            return
        newest: Any = content[-1]
        if any(block is newest for block in self.moving):
            return
        newest["cache_control"] = {"type": "ephemeral"}
        self.moving.append(newest)
        while len(self.moving) > MOVING_BREAKPOINTS:
            self.moving.pop(0).pop("cache_control", None)


RECORDED_TEXT = 10_000  # characters of one input value kept in the journal and the record


def recorded_input(arguments: dict[str, Any]) -> dict[str, Any]:
    """A call's input as recorded: long text values cut (a whole file given to
    write_file would otherwise sit in the log forever); the call itself got it all."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if isinstance(value, str) and len(value) > RECORDED_TEXT:
            value = value[:RECORDED_TEXT] + f"\n[cut: {len(value):,} characters in all]"
        out[key] = value
    return out


def run_tool(tools: ToolProvider, block: Any) -> tuple[Step, dict[str, Any]]:
    """Execute one tool_use block: its Step and its tool_result block."""
    arguments = block.input if isinstance(block.input, dict) else {}
    started = utc_iso(datetime.now(UTC))
    try:
        out = tools.call(block.name, arguments)
    except Exception as exc:  # a provider must not raise; if one does, the model hears it
        out = ToolOutput(f"the tool failed: {type(exc).__name__}: {exc}", is_error=True)
    finished = utc_iso(datetime.now(UTC))
    step = Step(block.name, recorded_input(arguments), out.text, out.is_error, started, finished)
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": block.id,
        "content": out.text or "(no output)",
    }
    if out.is_error:
        result["is_error"] = True
    return step, result


def run_loop(
    request: BrainRequest, messages: list[MessageParam], send: Sender, system: bool = False
) -> BrainReply:
    """Round trips until an answer without tool calls; raises RunStopped otherwise.

    `system`: the request has system text, whose end holds breakpoint 1 (messages.py).
    """
    tools = request.tools
    params = tool_params(tools.specs(), mark_last=not system) if tools is not None else []
    breakpoints = Breakpoints()
    total = Usage()
    turns = 0
    try:
        while True:
            turns += 1
            if params:
                breakpoints.move(messages)
            message = send(messages, params)
            total = total + usage_of(message)
            uses = [b for b in message.content if b.type == "tool_use"]
            if tools is None or not uses or message.stop_reason != "tool_use":
                text = text_of(message)
                model = str(message.model or request.model)
                return BrainReply(text, model, total, message.stop_reason, turns)
            if turns >= request.max_turns:
                raise RunStopped(MAX_TURNS, retryable=False, usage=total, turns=turns)
            if request.max_run_tokens is not None and total.total > request.max_run_tokens:
                raise RunStopped(MAX_RUN_TOKENS, retryable=False, usage=total, turns=turns)
            results: list[Any] = []
            for block in uses:
                step, result = run_tool(tools, block)
                if request.on_step is not None:
                    request.on_step(step)
                pause_point("tool-loop-after-step")
                results.append(result)
            messages.append({"role": "assistant", "content": assistant_blocks(message)})
            messages.append({"role": "user", "content": results})
    except RunStopped:
        raise
    except BrainError as exc:
        raise RunStopped(exc.message, retryable=exc.retryable, usage=total, turns=turns) from None
