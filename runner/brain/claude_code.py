"""The claude-code brain: Claude Code's agent, through the Claude Agent SDK.

`brain.provider: claude-code` (SPEC "Brains"). One run is one fresh CLI process in
the home, asked once, started before the SDK (the `claude-code` extra) is imported
(claude_code_cli.py); what it is told and allowed is decided in claude_code_setup.py.
Claude Code uses `ANTHROPIC_API_KEY` when set, else its own login.

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

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.brain import claude_code_cli as cli
from runner.brain import claude_code_setup as setup
from runner.brain import process_tree
from runner.brain.claude_code_grants import permissions, refusal
from runner.brain.claude_code_setup import (
    Ask,
    describe_result,
    quiet_sdk_log,
    redact,
    sdk_leftovers,
)
from runner.brain.claude_code_steps import StepTracker
from runner.brain.offline import estimate_tokens, request_text
from runner.brain.protocol import (
    BrainReply,
    BrainRequest,
    RunStopped,
    SummaryRequest,
    TextSink,
    Usage,
)
from runner.errors import BrainError
from runner.home import Home
from runner.settings import BrainSettings
from runner.testpause import pause_point

if TYPE_CHECKING:
    from anyio.abc import Process, TaskGroup
    from claude_agent_sdk import ClaudeAgentOptions


STARTUP = 60.0  # seconds the CLI may take to start before `brain.timeout` applies

log = logging.getLogger("runner.brain")


class ClaudeCodeBrain:
    name = "claude-code"
    runs_own_tools = True  # Claude Code's tools and MCP servers, under the task's grants

    def __init__(self, settings: BrainSettings, home: Path, cli_path: Path | None = None) -> None:
        self.settings = settings
        self.home = home
        self.cli_path = cli_path  # None: the CLI bundled with the SDK (else `claude` on PATH)
        self.last_tag: str | None = None  # the process tag of the latest run (for tests)

    def describe(self, model: str | None = None) -> str:
        return f"{self.name} ({model or self.settings.model})"

    def warm(self) -> None:
        """Import the SDK now (about half a second), so a due run does not wait for it."""
        cli.import_sdk()
        process_tree.sweep_orphans(self.home)  # what a killed runner left behind

    # -- the Brain interface ------------------------------------------------------

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        ask = Ask(
            prompt=request.prompt,
            system_append=setup.context_text(request),
            model=request.model,
            max_tokens=request.max_tokens,
            grants=request.grants,
            permissions=permissions(Home(self.home), request.grants),
            max_turns=request.max_turns,
            max_run_tokens=request.max_run_tokens,
            on_step=request.on_step,
        )
        return self._run(ask, on_text)

    def count_tokens(self, request: BrainRequest) -> int:
        """An estimate: Claude Code offers no count without spending a request."""
        return estimate_tokens(setup.context_text(request) + "\n" + request_text(request))

    def summarize(self, request: SummaryRequest) -> BrainReply:
        ask = Ask(request.prompt, request.system, request.model, request.max_tokens)
        reply = self._run(ask, None)
        if not reply.text.strip():
            raise BrainError(f"the summary came back empty (stop reason: {reply.stop_reason})")
        return reply

    # -- one CLI run --------------------------------------------------------------

    def _run(self, ask: Ask, on_text: TextSink | None) -> BrainReply:
        import anyio

        quiet_sdk_log()
        tag = self.last_tag = process_tree.new_tag()
        run = Run(ask, self, tag, on_text)
        process_tree.track(tag)  # ended at exit if the process ends first
        try:
            return anyio.run(run.drive)
        finally:
            if run.expired or run.failed:
                process_tree.kill_tagged(tag)  # nothing it started may outlive it
            process_tree.untrack(tag)

    def options(self, ask: Ask, tag: str, run: Run) -> ClaudeAgentOptions:
        from claude_agent_sdk import ClaudeAgentOptions, HookMatcher

        perms = ask.permissions
        # Every call passes the grants first; a check that fails blocks the call.
        guard = HookMatcher(matcher=None, hooks=[run.pre_tool_use], on_failure="block")
        return ClaudeAgentOptions(
            cwd=str(self.home),
            model=ask.model,
            system_prompt={"type": "preset", "preset": "claude_code", "append": ask.system_append},
            tools=perms.tools,
            allowed_tools=perms.allowed,
            mcp_servers=perms.mcp_servers,  # type: ignore[arg-type]
            hooks={"PreToolUse": [guard]} if perms.any else None,
            max_turns=ask.max_turns,
            permission_mode="dontAsk",  # not allowed up front: refused, never asked
            setting_sources=[],
            settings=json.dumps(setup.settings_json()),
            strict_mcp_config=True,
            include_partial_messages=True,
            verbatim_prompts=True,  # calendar text is data: no @file or /command expansion
            extra_args={"no-session-persistence": None},
            env=setup.run_env(self.settings, ask.max_tokens, process_tree.tags(tag, self.home)),
            stderr=run.stderr_line,
            cli_path=self.cli_path,
        )


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
        self.heard = False  # a first message from the CLI: it has started
        self.model = ask.model
        self.texts: list[str] = []
        self.stderr_tail: list[str] = []
        self.result: Any = None
        self.steps = StepTracker(ask.on_step, brain.home)
        self.stop: BrainError | None = None  # why the run must end early (a server, a limit)
        self.spent = Usage()  # the finished round trips' usage, from the stream
        self.current: dict[str, Any] = {}  # the round trip under way
        self.turns_started = 0
        self.cli = ""  # the CLI's path, once started

    def stderr_line(self, line: str) -> None:
        self.last = time.monotonic()
        self.stderr_tail = [*self.stderr_tail[-19:], line]

    async def drive(self) -> BrainReply:
        import asyncio

        import anyio

        asyncio.get_running_loop().set_exception_handler(sdk_leftovers)
        process = await self.start()
        failure: list[Exception] = []
        async with anyio.create_task_group() as group:
            group.start_soon(self.watchdog)
            try:
                await self.consume(process, group)
            except Exception as exc:  # raised below, outside the task group
                failure.append(exc)
            finally:
                group.cancel_scope.cancel()
        self.steps.close_all()  # a call cut off by the end of the run is a failed step
        if failure:
            self.failed = True
            first = failure[0]
            raise first if isinstance(first, BrainError) else self.error(first) from None
        return self.reply()

    async def pre_tool_use(self, data: Any, tool_use_id: str | None, context: Any) -> Any:
        """The PreToolUse hook: refuse what the grants do not allow, in words."""
        self.last = time.monotonic()
        home, ask = self.brain.home, self.ask
        args = data.get("tool_input") or {}
        why = refusal(home, ask.grants, str(data.get("tool_name")), args)
        if why is None:
            return {}
        decision = {"permissionDecision": "deny", "permissionDecisionReason": why}
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse", **decision}}

    def limit(self) -> float:
        """`brain.timeout` once the CLI has spoken; its start-up (a cold disk, a busy
        machine) may take up to STARTUP before that, the API not yet being waited on."""
        return self.timeout if self.heard else max(self.timeout, STARTUP)

    async def watchdog(self) -> None:
        """Ends the CLI (and all it started) once it has been silent for `timeout`."""
        import anyio

        while time.monotonic() - self.last < self.limit():
            await anyio.sleep(min(0.25, self.timeout / 4))
        self.expired = True
        await anyio.to_thread.run_sync(process_tree.kill_tagged, self.tag)

    async def start(self) -> Process:
        """Start the CLI before importing the SDK: it boots on the other core meanwhile
        (claude_code_cli.py). Then end what a killed runner left running."""
        ask, brain = self.ask, self.brain
        self.cli = cli.find_cli(brain.cli_path)
        argv = cli.command(
            self.cli,
            system_append=ask.system_append,
            model=ask.model,
            perms=ask.permissions,
            max_turns=ask.max_turns,
            settings=setup.settings_json(),
        )
        own = setup.run_env(brain.settings, ask.max_tokens, process_tree.tags(self.tag, brain.home))
        process = await cli.spawn(argv, cli.environment(own, brain.home), brain.home)
        log.debug("claude-code: CLI started (pid %d)", process.pid)
        pause_point("claude-code CLI started")  # crash tests: SIGKILL before the SDK speaks
        process_tree.sweep_orphans(brain.home, tell=True)
        return process

    async def consume(self, process: Process, group: TaskGroup) -> None:
        try:
            cli.import_sdk()  # while the CLI starts
            from claude_agent_sdk import query

            from runner.brain.claude_code_transport import CLITransport, read_stderr
        except BaseException:  # no SDK, or Ctrl-C: the CLI was told nothing, end it
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        log.debug("claude-code: SDK imported")
        self.last = time.monotonic()  # the CLI's silence counts from when it can be heard
        transport = CLITransport(process, self.cli)
        group.start_soon(read_stderr, process, self.stderr_line)
        try:
            options = self.brain.options(self.ask, self.tag, self)
            stream: AsyncIterator[Any] = query(
                prompt=self.ask.prompt, options=options, transport=transport
            )
            await self.read(stream)
        finally:
            await transport.close()  # done by the SDK already, unless it never got it

    async def read(self, stream: AsyncIterator[Any]) -> None:
        try:
            async for message in stream:
                self.last, self.heard = time.monotonic(), True
                self.take(message)
                if self.stop is not None and not self.failed:
                    # End the CLI and all it started; the stream then ends as after a
                    # timeout, and the SDK closes its side in its own order.
                    self.failed = True
                    process_tree.kill_tagged(self.tag)  # now, before it sends another request
        except Exception:
            if self.stop is None and not self.expired:
                raise  # the CLI's own end, put in words by error()
        except BaseException:  # Ctrl-C, shutdown: no answer is awaited, end it all now
            process_tree.kill_tagged(self.tag)
            raise
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        if self.stop is not None:
            raise self.stop
        if self.expired:
            raise self.timed_out()
        if self.result is None:
            raise BrainError(f"Claude Code ended without a result{self.stderr_note()}")
        if self.result.is_error:
            raise self.result_error(self.result)

    def take(self, message: Any) -> None:
        from claude_agent_sdk import (
            AssistantMessage,
            ResultMessage,
            StreamEvent,
            SystemMessage,
            ToolResultBlock,
            ToolUseBlock,
            UserMessage,
        )

        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is None:
                self.stream_event(message.event)
        elif isinstance(message, AssistantMessage):
            if message.parent_tool_use_id is None and message.model != "<synthetic>":
                self.model = message.model or self.model
            for block in message.content:
                if isinstance(block, ToolUseBlock) and message.parent_tool_use_id is None:
                    self.steps.opened(block)
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    self.steps.closed(block)
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            self.check_servers(message.data.get("mcp_servers") or [])
        elif isinstance(message, ResultMessage):
            self.result = message

    def check_servers(self, servers: list[Any]) -> None:
        """A granted MCP server that did not start fails the run (retryably), by name."""
        for server in servers:
            name, status = server.get("name"), server.get("status")
            if name in self.ask.permissions.mcp_servers and status not in ("connected", None):
                self.stop = BrainError(f"MCP server {name} did not start ({status})")

    def stream_event(self, event: dict[str, Any]) -> None:
        kind, delta = event.get("type"), event.get("delta") or {}
        if kind == "content_block_delta" and delta.get("type") == "text_delta":
            text = str(delta.get("text") or "")
            self.texts.append(text)
            if self.on_text is not None and text:
                self.on_text(text)
        elif kind == "message_start":
            self.spent += Usage.from_dict(self.current)
            self.current, self.turns_started = {}, self.turns_started + 1
            self.count(dict((event.get("message") or {}).get("usage") or {}))
        elif kind == "message_delta":
            self.count(dict(event.get("usage") or {}))

    def count(self, usage: dict[str, Any]) -> None:
        """The round trips' usage so far, against `max_run_tokens` (SPEC "The loop")."""
        self.current = {**self.current, **{k: v for k, v in usage.items() if v is not None}}
        limit = self.ask.max_run_tokens
        total = self.spent + Usage.from_dict(self.current)
        if limit is not None and total.total > limit and self.stop is None:
            turns = self.turns_started
            self.stop = RunStopped(setup.MAX_RUN_TOKENS, retryable=False, usage=total, turns=turns)

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
            f"timed out: Claude Code sent nothing for {self.limit():g}s and was ended"
        )

    def stderr_note(self) -> str:
        tail = " | ".join(line.strip() for line in self.stderr_tail[-3:] if line.strip())
        return f": {redact(tail)}" if tail else ""

    def error(self, exc: Exception) -> BrainError:
        from claude_agent_sdk import ProcessError

        if self.expired:
            return self.timed_out()
        if isinstance(exc, ProcessError) and self.result is not None and self.result.is_error:
            return self.result_error(self.result)
        detail = redact(f"{type(exc).__name__}: {exc}")
        return BrainError(f"Claude Code failed: {detail}{self.stderr_note()}")

    def result_error(self, result: Any) -> BrainError:
        error = describe_result(result, self.ask.model)
        if error.message == setup.MAX_TURNS:  # SPEC: the run fails with error `max_turns`
            usage = Usage.from_dict(result.usage)
            return RunStopped(error.message, retryable=False, usage=usage, turns=result.num_turns)
        return error
