"""MCP servers as a tool provider, through the official `mcp` SDK's client.

`open_mcp(home, names, timeout)` starts the named servers of `<home>/.mcp.json`,
initializes them, lists their tools as `mcp__<server>__<tool>` and returns a provider
whose `call()` routes each call to its server. The SDK is asyncio while the runner's
loop is synchronous, so the provider runs one event loop in a thread of its own and
submits coroutines to it. Each server's transport and session are entered and left by
one task on that loop (anyio's scopes must be left in the task that entered them);
calls are other tasks that use the session meanwhile.

Failures: a server that cannot be spawned, exits before answering, or does not
finish `initialize` and `tools/list` within `timeout` is a ToolStartError naming it,
raised after every server of this provider has been stopped, so no process is left.
A call that fails, times out or finds its server gone is an is_error output naming
the server: the model sees it and the run goes on.

The `mcp` package is imported only inside the functions that start servers, so
`list`, `check` and runs without MCP never load it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tempfile
import threading
from collections.abc import Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from runner.home import Home
from runner.tools.base import ToolOutput, ToolSpec, ToolStartError
from runner.tools.mcpconfig import (
    HttpServer,
    McpConfigError,
    McpServer,
    StdioServer,
    expand,
    load_mcp_config,
    variables,
)
from runner.tools.mcpprocs import MARKER_ENV, new_marker, stop_leftovers, stop_orphans
from runner.tools.mcpresults import Redactor, tool_name, tool_output

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import Tool

START_TIMEOUT = 30.0  # seconds for spawn + initialize + tools/list, per server (in parallel)
CALL_TIMEOUT = 300.0  # seconds for one tool call
STOP_TIMEOUT = 15.0  # the SDK's shutdown: close stdin, 2 s, SIGTERM, 2 s, SIGKILL
# Besides a server's own `env`, the SDK passes only HOME, LOGNAME, PATH, SHELL, TERM
# and USER; these few more keep locale and zone right. Nothing else (no API keys).
EXTRA_ENV = ("LANG", "LC_ALL", "TZ", "TMPDIR")

T = TypeVar("T")
# The SDK logs a server's bad output (a traceback per non-JSON line) and shutdown
# trouble; without a handler Python would print those on the runner's stderr, which
# is the user's. Configured logging (--debug) still receives them.
logging.getLogger("mcp").addHandler(logging.NullHandler())


def open_mcp(
    home: Home,
    names: Sequence[str],
    timeout: float = START_TIMEOUT,
    call_timeout: float = CALL_TIMEOUT,
) -> McpTools:
    """Start the named servers; raises ToolStartError naming the first one that fails."""
    try:
        config = load_mcp_config(home)
    except McpConfigError as exc:
        raise ToolStartError(str(exc)) from None
    servers: list[McpServer] = []
    for name in dict.fromkeys(names):
        server = config.servers.get(name)
        if server is None:
            raise ToolStartError(f"MCP server '{name}' is not in {config.path}")
        try:
            servers.append(expand(server, config.path))
        except McpConfigError as exc:
            raise ToolStartError(str(exc)) from None
    secrets = {
        os.environ[v] for s in servers for v in variables(config.servers[s.name]) if v in os.environ
    }
    stop_orphans()  # servers of a runner that was killed (SIGKILL, power) before it stopped them
    tools = McpTools(home, servers, timeout, call_timeout, secrets)
    tools.start()
    return tools


class McpTools:
    """A ToolProvider over one or more running MCP servers."""

    def __init__(
        self,
        home: Home,
        servers: Sequence[McpServer],
        timeout: float,
        call_timeout: float,
        secrets: set[str],
    ) -> None:
        self._redact = Redactor(secrets)
        self._links = [_Link(home, s, timeout, call_timeout, self._redact) for s in servers]
        self._timeout = timeout
        self._routes: dict[str, tuple[_Link, str]] = {}
        self._specs: list[ToolSpec] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp", daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()
        try:
            failures = self._submit(self._start_all(), self._timeout + STOP_TIMEOUT)
        except BaseException:
            self.close()
            raise
        if failures:
            self.close()
            raise ToolStartError("; ".join(failures))
        for link in self._links:
            for tool in link.tools:
                name = tool_name(link.server.name, tool.name, self._routes)
                self._routes[name] = (link, tool.name)
                schema = dict(tool.input_schema)
                schema.setdefault("type", "object")
                self._specs.append(ToolSpec(name, tool.description or "", schema))

    def specs(self) -> list[ToolSpec]:
        return list(self._specs)

    def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        route = self._routes.get(name)
        if route is None or self._closed:
            return ToolOutput(f"no such MCP tool: {name}", is_error=True)
        link, tool = route
        try:
            # The coroutine keeps its own timeout; this one only guards against a stuck loop.
            return self._submit(link.call(tool, arguments), link.call_timeout + STOP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            return ToolOutput(f"MCP server '{link.server.name}' did not answer", is_error=True)

    def close(self) -> None:
        """Stop every server (each one's process tree is killed if it will not exit)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._submit(self._stop_all(), STOP_TIMEOUT + 5)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
        self._loop.close()
        for link in self._links:
            link.stderr.close()

    def __enter__(self) -> McpTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    async def _start_all(self) -> list[str]:
        for link in self._links:
            link.begin()
        await asyncio.wait([link.ready for link in self._links])
        return [link.failure for link in self._links if link.failure is not None]

    async def _stop_all(self) -> None:
        for link in self._links:
            if link.task is not None:
                link.stop.set()
        tasks = [link.task for link in self._links if link.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)


class _Link:
    """One server: its session, owned by one task from spawn to shutdown."""

    ready: asyncio.Future[None]  # done when started or failed (made on the loop)
    stop: asyncio.Event

    def __init__(
        self, home: Home, server: McpServer, timeout: float, call_timeout: float, redact: Redactor
    ) -> None:
        self.home = home
        self.server = server
        self.timeout = timeout
        self.call_timeout = call_timeout
        self.redact = redact
        # The server's stderr: kept off the runner's own, read back to explain a failure.
        self.stderr: TextIO = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.session: ClientSession | None = None
        self.tools: list[Tool] = []
        self.failure: str | None = None  # why it did not start
        self.gone: str | None = None  # why it stopped after starting
        self.task: asyncio.Task[None] | None = None
        self.stderr_mark = 0  # where the server's stderr stood when the current call began
        self.marker = new_marker()

    def begin(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.stop = asyncio.Event()
        self.task = loop.create_task(self._lifetime())

    async def _lifetime(self) -> None:
        import anyio
        from mcp import ClientSession

        name = self.server.name
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport(stack))
                session = await stack.enter_async_context(ClientSession(read, write))
                with anyio.fail_after(self.timeout):
                    await session.initialize()
                    self.tools = await _list_tools(session)
                self.session = session
                self.ready.set_result(None)
                await self.stop.wait()
        except Exception as exc:  # the SDK raises many kinds (OSError, MCPError, groups)
            if not self.ready.done():
                self.failure = f"MCP server '{name}' did not start: {self._why(exc, starting=True)}"
                self.ready.set_result(None)
            self.gone = self._why(exc, starting=False)
        finally:
            self.session = None
            if isinstance(self.server, StdioServer):
                stop_leftovers(self.marker)
            if not self.ready.done():  # cancelled before it was ready
                self.failure = f"MCP server '{name}' did not start: cancelled"
                self.ready.set_result(None)

    def _transport(self, stack: AsyncExitStack) -> Any:
        server = self.server
        if isinstance(server, HttpServer) and server.transport == "sse":
            from mcp.client.sse import sse_client

            headers = dict(server.headers)
            return sse_client(server.url, headers, self.timeout, self.call_timeout)
        if isinstance(server, HttpServer):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(
                headers=dict(server.headers),
                timeout=httpx2.Timeout(self.timeout, read=self.call_timeout),
            )
            stack.push_async_callback(client.aclose)
            return streamable_http_client(server.url, http_client=client)
        assert isinstance(server, StdioServer)
        from mcp import StdioServerParameters, stdio_client

        env = {k: os.environ[k] for k in EXTRA_ENV if k in os.environ} | dict(server.env)
        env[MARKER_ENV] = self.marker
        params = StdioServerParameters(
            command=server.command, args=list(server.args), env=env, cwd=self.home.root
        )
        return stdio_client(params, errlog=self.stderr)

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolOutput:
        import anyio

        name = self.server.name
        session = self.session
        if session is None:
            return ToolOutput(f"MCP server '{name}' stopped earlier: {self.gone}", is_error=True)
        self.stderr_mark = self._stderr_size()
        try:
            with anyio.fail_after(self.call_timeout):
                result = await session.call_tool(tool, arguments)
        except TimeoutError:
            message = f"no answer within {self.call_timeout:g} s"
            return ToolOutput(f"MCP server '{name}', tool '{tool}': {message}", is_error=True)
        except Exception as exc:  # a dead server, a protocol error: an output, never a raise
            why = self._why(exc, starting=False)
            if _closed(_leaf(exc)):
                self.session, self.gone = None, why
            return ToolOutput(f"MCP server '{name}', tool '{tool}': {why}", is_error=True)
        return tool_output(result)

    def _why(self, exc: BaseException, *, starting: bool) -> str:
        """A one-line cause, with the server's last stderr line where it helps."""
        leaf = _leaf(exc)
        if isinstance(leaf, TimeoutError):
            return f"no answer to initialize within {self.timeout:g} s"
        if isinstance(leaf, FileNotFoundError | PermissionError) and starting:
            command = getattr(self.server, "command", "")
            text = f"cannot run '{command}': {leaf.strerror}"
        elif _closed(leaf):
            text = "the server closed the connection (its process ended?)"
        else:
            text = f"{type(leaf).__name__}: {leaf}".rstrip(": ")
        tail = self._stderr_tail()
        return self.redact(f"{text} (stderr: {tail})" if tail else text)

    def _stderr_size(self) -> int:
        try:
            return self.stderr.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return 0

    def _stderr_tail(self) -> str:
        """The last line the server wrote to stderr since the current call began."""
        try:
            size = self._stderr_size()
            self.stderr.seek(max(self.stderr_mark, size - 4096))
            lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:300] if lines else ""


async def _list_tools(session: ClientSession) -> list[Tool]:
    from mcp.types import PaginatedRequestParams

    tools: list[Tool] = []
    cursor: str | None = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor or len(tools) > 10_000:
            return tools


def _leaf(exc: BaseException) -> BaseException:
    """The first real cause inside the SDK's (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _closed(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED
