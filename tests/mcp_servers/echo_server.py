"""A small MCP server for the tests, written with the SDK's server side (MCPServer,
mcp 2's name for FastMCP). stdio by default; `--http PORT` serves streamable HTTP and
`--sse PORT` the older SSE transport, on 127.0.0.1. `--pidfile PATH` writes its pid
first, so a test can check it is gone. `--noise` writes a line that is not JSON-RPC
to stdout before serving; `--child` starts a child process that lingers (its pid is
the pidfile's second line)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("echo")


@app.tool()
def echo(text: str) -> str:
    """Answer with the text given."""
    return text


@app.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"refused: {reason}")


@app.tool()
async def slow(seconds: float) -> str:
    """Answer after the given number of seconds."""
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@app.tool()
def die() -> str:
    """Kill the server process in the middle of the call."""
    print("echo server: dying on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@app.tool()
def getenv(name: str) -> str:
    """The server's environment variable `name`, or <unset>."""
    return os.environ.get(name, "<unset>")


@app.tool()
def cwd() -> str:
    """The server's working directory."""
    return os.getcwd()


@app.tool()
def header(name: str, ctx: Context) -> str:
    """An HTTP request header (for servers reached over HTTP)."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", {})
    return str(headers.get(name, "<none>"))


@app.tool(name="dotted.name_" + "x" * 70)
def long_name() -> str:
    """A tool whose name the Messages API would refuse as it is."""
    return "long"


@app.tool()
def big(size: int) -> str:
    """A text of `size` characters."""
    return "x" * size


@app.tool()
def picture() -> Image:
    """A tiny PNG: content the model is told about, not shown."""
    return Image(data=b"\x89PNG\r\n\x1a\n", format="png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pidfile")
    parser.add_argument("--http", type=int)
    parser.add_argument("--sse", type=int)
    parser.add_argument("--noise", action="store_true", help="a line that is not JSON first")
    parser.add_argument("--child", action="store_true", help="start a child that lingers")
    args = parser.parse_args()
    if args.noise:
        print("hello, I am not JSON-RPC", flush=True)
    pids = [os.getpid()]
    if args.child:
        code = "import time; time.sleep(120)"
        pids.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL).pid)
    if args.pidfile:
        Path(args.pidfile).write_text("\n".join(map(str, pids)))
    if args.http:
        app.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        app.run("sse", host="127.0.0.1", port=args.sse)
    else:
        app.run()


if __name__ == "__main__":
    main()
