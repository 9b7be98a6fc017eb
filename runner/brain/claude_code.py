"""The claude-code brain: Claude Code's agent, through the Claude Agent SDK.

`brain.provider: claude-code` (SPEC "Brains"). The SDK (the `claude-code` extra,
whose wheel bundles the Claude Code CLI) is imported only when a run starts. One
run is one fresh CLI process in the home, asked once; what it is told and allowed
is decided in claude_code_setup.py. Claude Code uses `ANTHROPIC_API_KEY` when set,
else its own login.

- Text streams to `on_text` as the CLI relays the API's chunks.
- `brain.timeout` is the longest the CLI may stay silent (no message, no chunk, no
  permission question) before the run is ended: the CLI and everything it started
  are killed (process_tree.py), so no process outlives a run that timed out.
- The reply carries the final answer, the usage summed over all round trips, the
  number of turns and the cost Claude Code reports.
- Failures become BrainError in words; a missing login, a refused key, a bad request
  or a missing model are not retried.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.brain import claude_code_setup as setup
from runner.brain import process_tree
from runner.brain.offline import estimate_tokens, request_text
from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink, Usage
from runner.errors import BrainError
from runner.settings import BrainSettings

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions

MISSING = "the claude-code brain needs the claude-agent-sdk package: pip install '.[claude-code]'"


class ClaudeCodeBrain:
    name = "claude-code"

    def __init__(self, settings: BrainSettings, home: Path) -> None:
        self.settings = settings
        self.home = home
        self.last_tag: str | None = None  # the process tag of the latest run (for tests)

    def describe(self, model: str | None = None) -> str:
        return f"{self.name} ({model or self.settings.model})"

    def warm(self) -> None:
        """Import the SDK now (about half a second), so a due run does not wait for it."""
        try:
            import claude_agent_sdk  # noqa: F401
        except ImportError:
            raise BrainError(MISSING, retryable=False) from None

    # -- the Brain interface ------------------------------------------------------

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        ask = Ask(
            prompt=request.prompt,
            system_append=setup.context_text(request),
            model=request.model,
            max_tokens=request.max_tokens,
        )
        return self._run(ask, on_text)

    def count_tokens(self, request: BrainRequest) -> int:
        """An estimate: Claude Code offers no count without spending a request."""
        return estimate_tokens(setup.context_text(request) + "\n" + request_text(request))

    def summarize(self, request: SummaryRequest) -> BrainReply:
        ask = Ask(
            prompt=request.prompt,
            system_append=request.system,
            model=request.model,
            max_tokens=request.max_tokens,
        )
        reply = self._run(ask, None)
        if not reply.text.strip():
            raise BrainError(f"the summary came back empty (stop reason: {reply.stop_reason})")
        return reply

    # -- one CLI run --------------------------------------------------------------

    def _run(self, ask: Ask, on_text: TextSink | None) -> BrainReply:
        try:
            import anyio
        except ImportError:
            raise BrainError(MISSING, retryable=False) from None
        tag = self.last_tag = process_tree.new_tag()
        run = Run(ask, self, tag, on_text)
        try:
            return anyio.run(run.drive)
        finally:
            if run.expired or run.failed:
                process_tree.kill_tagged(tag)  # nothing it started may outlive it

    def options(self, ask: Ask, tag: str, run: Run) -> ClaudeAgentOptions:
        from claude_agent_sdk import ClaudeAgentOptions

        return ClaudeAgentOptions(
            cwd=str(self.home),
            model=ask.model,
            system_prompt={"type": "preset", "preset": "claude_code", "append": ask.system_append},
            tools=[],
            permission_mode="dontAsk",
            setting_sources=[],
            settings=json.dumps(setup.settings_json([])),
            strict_mcp_config=True,
            include_partial_messages=True,
            verbatim_prompts=True,  # calendar text is data: no @file or /command expansion
            extra_args={"no-session-persistence": None},
            env=setup.run_env(self.settings, ask.max_tokens, (process_tree.TAG, tag)),
            stderr=run.stderr_line,
        )


@dataclass(frozen=True)
class Ask:
    """One question for the CLI: the user message and the text for its system prompt."""

    prompt: str
    system_append: str
    model: str
    max_tokens: int


class Run:
    """Drives one CLI process: streams its text, watches its silence, reads its result."""

    def __init__(self, ask: Ask, brain: ClaudeCodeBrain, tag: str, on_text: TextSink | None):
        self.ask = ask
        self.brain = brain
        self.tag = tag
        self.on_text = on_text
        self.timeout = brain.settings.timeout
        self.last = time.monotonic()
        self.expired = False
        self.failed = False
        self.model = ask.model
        self.texts: list[str] = []
        self.stderr_tail: list[str] = []
        self.result: Any = None

    def stderr_line(self, line: str) -> None:
        self.last = time.monotonic()
        self.stderr_tail = [*self.stderr_tail[-19:], line]

    async def drive(self) -> BrainReply:
        import anyio

        failure: list[Exception] = []
        async with anyio.create_task_group() as group:
            group.start_soon(self.watchdog)
            try:
                await self.consume()
            except Exception as exc:  # raised below, outside the task group
                failure.append(exc)
            finally:
                group.cancel_scope.cancel()
        if failure:
            self.failed = True
            first = failure[0]
            raise first if isinstance(first, BrainError) else self.error(first) from None
        return self.reply()

    async def watchdog(self) -> None:
        """Ends the CLI (and all it started) once it has been silent for `timeout`."""
        import anyio

        while time.monotonic() - self.last < self.timeout:
            await anyio.sleep(min(0.25, self.timeout / 4))
        self.expired = True
        await anyio.to_thread.run_sync(process_tree.kill_tagged, self.tag)

    async def consume(self) -> None:
        from claude_agent_sdk import query

        options = self.brain.options(self.ask, self.tag, self)
        stream: AsyncIterator[Any] = query(prompt=self.ask.prompt, options=options)
        try:
            async for message in stream:
                self.last = time.monotonic()
                self.take(message)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        if self.expired:
            raise self.timed_out()
        if self.result is None:
            raise BrainError(f"Claude Code ended without a result{self.stderr_note()}")
        if self.result.is_error:
            raise self.result_error(self.result)

    def take(self, message: Any) -> None:
        from claude_agent_sdk import AssistantMessage, ResultMessage, StreamEvent

        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is None:
                self.stream_event(message.event)
        elif isinstance(message, AssistantMessage):
            if message.parent_tool_use_id is None and message.model:
                self.model = message.model
        elif isinstance(message, ResultMessage):
            self.result = message

    def stream_event(self, event: dict[str, Any]) -> None:
        delta = event.get("delta") or {}
        if event.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
            text = str(delta.get("text") or "")
            self.texts.append(text)
            if self.on_text is not None and text:
                self.on_text(text)

    def reply(self) -> BrainReply:
        result = self.result
        text = result.result if isinstance(result.result, str) else "".join(self.texts)
        cost = result.total_cost_usd
        return BrainReply(
            text=text,
            model=self.model,
            usage=Usage.from_dict(result.usage),
            stop_reason=result.stop_reason,
            turns=int(result.num_turns),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        )

    # -- failures in words --------------------------------------------------------

    def timed_out(self) -> BrainError:
        return BrainError(
            f"timed out: Claude Code sent nothing for {self.timeout:g}s and was ended"
        )

    def stderr_note(self) -> str:
        tail = " | ".join(line.strip() for line in self.stderr_tail[-3:] if line.strip())
        return f": {redact(tail)}" if tail else ""

    def error(self, exc: Exception) -> BrainError:
        from claude_agent_sdk import CLINotFoundError, ProcessError

        if self.expired:
            return self.timed_out()
        if isinstance(exc, CLINotFoundError):
            return BrainError(
                f"the Claude Code CLI is missing ({exc}): reinstall claude-agent-sdk, "
                "whose wheel bundles it, or put `claude` on PATH",
                retryable=False,
            )
        if isinstance(exc, ProcessError) and self.result is not None and self.result.is_error:
            return self.result_error(self.result)
        detail = redact(f"{type(exc).__name__}: {exc}")
        return BrainError(f"Claude Code failed: {detail}{self.stderr_note()}")

    def result_error(self, result: Any) -> BrainError:
        return describe_result(result, self.ask.model)


def describe_result(result: Any, model: str) -> BrainError:
    """A result with `is_error`, in words (SPEC: auth and bad requests are final)."""
    text = redact(str(result.result or "; ".join(result.errors or []) or result.subtype))
    text = re.sub(r"API Error: (\d+ )?", "", text).strip()  # the status is said in words
    status = result.api_error_status
    if result.subtype == "error_max_turns" or result.terminal_reason == "max_turns":
        return BrainError("max_turns", retryable=False)
    if "not logged in" in text.lower() or "/login" in text:
        return BrainError(
            "not logged in: run `claude` once and /login, or set ANTHROPIC_API_KEY",
            retryable=False,
        )
    if status == 401:
        return BrainError(
            "authentication failed: check ANTHROPIC_API_KEY or the Claude Code login",
            retryable=False,
        )
    if status == 403:
        return BrainError(f"permission denied for model {model}: {text}", retryable=False)
    if status == 404:
        return BrainError(f"model not found: {model}", retryable=False)
    if status in (400, 413):
        return BrainError(f"bad request: {text}", retryable=False)
    if status == 429:
        return BrainError(f"rate limited: {text}")
    if status == 529:
        return BrainError(f"overloaded: {text}")
    if status is not None:
        return BrainError(f"API error (HTTP {status}): {text}")
    return BrainError(f"Claude Code failed: {text}")


def redact(text: str) -> str:
    """No secret of the environment in a message (the API key may be echoed)."""
    import os

    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return text
