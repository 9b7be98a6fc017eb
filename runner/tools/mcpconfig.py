"""`<home>/.mcp.json`: which MCP servers a task may name, in Claude Code's format.

    {"mcpServers": {"git":    {"command": "uvx", "args": ["mcp-server-git"], "env": {...}},
                    "remote": {"type": "http", "url": "https://...", "headers": {...}}}}

(`type: "sse"` is the older HTTP transport; Claude Code's files may have it.)

Loading is strict (unknown keys, wrong types and duplicate names are errors naming the
file and line) and never imports the `mcp` SDK, so `runner check` stays light.
`${VAR}` and `${VAR:-default}` in command, args, env, url and headers are expanded
from the environment only when a server starts (`expand`), so the file in git holds
the variable's name and never the secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner.errors import FileError
from runner.home import Home

CONFIG_NAME = ".mcp.json"
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# Claude Code's syntax: ${VAR} or ${VAR:-default}; anything else with `$` is literal.
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STDIO_KEYS = {"type", "command", "args", "env"}
_HTTP_KEYS = {"type", "url", "headers"}

JsonPath = tuple[str | int, ...]


class McpConfigError(FileError):
    """`.mcp.json` does not load, or a server's values cannot be expanded."""


@dataclass(frozen=True)
class StdioServer:
    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class HttpServer:
    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None
    transport: str = "http"  # http (streamable HTTP) or sse (the older SSE transport)


McpServer = StdioServer | HttpServer


@dataclass(frozen=True)
class McpConfig:
    path: Path
    servers: Mapping[str, McpServer]


def config_path(home: Home) -> Path:
    return home.root / CONFIG_NAME


def load_mcp_config(home: Home) -> McpConfig:
    """The home's MCP servers; no `.mcp.json` means none. Raises McpConfigError."""
    path = config_path(home)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return McpConfig(path, {})
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(path, None, f"cannot read: {exc}") from None
    return parse_mcp_config(path, text)


def parse_mcp_config(path: Path, text: str) -> McpConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise McpConfigError(path, None, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. a number of more than 4,300 digits (found by fuzzing)
        raise McpConfigError(path, None, f"invalid JSON: {exc}") from None
    lines, duplicates = key_lines(text)
    where = _Where(path, lines)
    if duplicates:
        at, line = duplicates[0]
        raise McpConfigError(path, line, f"duplicate key '{at[-1]}'")
    if not isinstance(data, dict):
        raise where.error((), "expected an object with the key 'mcpServers'")
    for key in data:
        if key != "mcpServers":
            raise where.error((key,), f"unknown key '{key}' (expected 'mcpServers')")
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise where.error(("mcpServers",), "'mcpServers' must be an object of servers by name")
    parsed: dict[str, McpServer] = {}
    for name, entry in servers.items():
        parsed[name] = _server(where, name, entry)
    return McpConfig(path, parsed)


def expand(server: McpServer, path: Path, environ: Mapping[str, str] | None = None) -> McpServer:
    """The server with every `${VAR}` taken from `environ` (default: os.environ).

    An unset variable without a default is an error naming the server and the
    variable, never a value.
    """
    env = os.environ if environ is None else environ

    def one(value: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name, sep, default = match.group(1).partition(":-")
            if name in env:
                return env[name]
            if sep:
                return default
            raise McpConfigError(
                path,
                server.line,
                f"MCP server '{server.name}': environment variable {name} is not set",
            )

        return _VARIABLE.sub(sub, value)

    if isinstance(server, StdioServer):
        return replace(
            server,
            command=one(server.command),
            args=tuple(one(a) for a in server.args),
            env={k: one(v) for k, v in server.env.items()},
        )
    return replace(
        server, url=one(server.url), headers={k: one(v) for k, v in server.headers.items()}
    )


def variables(server: McpServer) -> set[str]:
    """The names of the environment variables the server's values refer to."""
    if isinstance(server, StdioServer):
        values = [server.command, *server.args, *server.env.values()]
    else:
        values = [server.url, *server.headers.values()]
    return {m.group(1).partition(":-")[0] for v in values for m in _VARIABLE.finditer(v)}


@dataclass(frozen=True)
class _Where:
    path: Path
    lines: dict[JsonPath, int]

    def error(self, at: JsonPath, message: str) -> McpConfigError:
        """An error at the line of `at`, or of its nearest parent that has one."""
        while at and at not in self.lines:
            at = at[:-1]
        return McpConfigError(self.path, self.lines.get(at, 1), message)


def _server(where: _Where, name: str, entry: Any) -> McpServer:
    at: JsonPath = ("mcpServers", name)
    if not SERVER_NAME.fullmatch(name):
        raise where.error(
            at,
            f"server name '{name}': letters, digits, '_' and '-' only (up to 40), "
            "as it becomes part of tool names (mcp__<server>__<tool>)",
        )
    if not isinstance(entry, dict):
        raise where.error(at, f"server '{name}' must be an object")
    kind = entry.get("type", "stdio")
    if kind not in ("stdio", "http", "sse"):
        message = f"server '{name}': type must be 'stdio', 'http' or 'sse'"
        raise where.error((*at, "type"), message)
    allowed = _STDIO_KEYS if kind == "stdio" else _HTTP_KEYS
    for key in entry:
        if key not in allowed:
            expected = ", ".join(sorted(allowed))
            raise where.error((*at, key), f"server '{name}': unknown key '{key}' ({expected})")
    line = where.lines.get(at)
    if kind != "stdio":
        url = _string(where, (*at, "url"), entry.get("url"), f"server '{name}': 'url'")
        if not re.match(r"https?://", url):
            raise where.error((*at, "url"), f"server '{name}': 'url' must start with http(s)://")
        headers = _strings(where, (*at, "headers"), entry.get("headers", {}), name)
        return HttpServer(name, url, headers, line, kind)
    command = _string(where, (*at, "command"), entry.get("command"), f"server '{name}': 'command'")
    args = entry.get("args", [])
    if not isinstance(args, list):
        raise where.error((*at, "args"), f"server '{name}': 'args' must be a list of strings")
    for i, arg in enumerate(args):
        _string(where, (*at, "args", i), arg, f"server '{name}': args[{i}]")
    env = _strings(where, (*at, "env"), entry.get("env", {}), name)
    return StdioServer(name, command, tuple(args), env, line)


def _string(where: _Where, at: JsonPath, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise where.error(at, f"{what} must be a non-empty string")
    _check_variables(where, at, value, what)
    return value


def _strings(where: _Where, at: JsonPath, value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise where.error(at, f"server '{name}': '{at[-1]}' must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise where.error((*at, key), f"server '{name}': {at[-1]}.{key} must be a string")
        _check_variables(where, (*at, key), item, f"server '{name}': {at[-1]}.{key}")
    return dict(value)


def _check_variables(where: _Where, at: JsonPath, value: str, what: str) -> None:
    for match in _VARIABLE.finditer(value):
        name = match.group(1).partition(":-")[0]
        if not _VAR_NAME.fullmatch(name):
            raise where.error(at, f"{what}: '${{{match.group(1)}}}' is not a variable name")


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


def key_lines(text: str) -> tuple[dict[JsonPath, int], list[tuple[JsonPath, int]]]:
    """The line of every value in a valid JSON text, by its path of keys and indexes,
    and the keys that occur twice in one object (json.loads silently keeps the last).

    The json module gives no positions; this small scanner walks the tokens of a
    text json.loads has already accepted, so it can assume the grammar holds.
    """
    lines: dict[JsonPath, int] = {}
    duplicates: list[tuple[JsonPath, int]] = []
    stack: list[list[Any]] = []  # per open container: [path, key-or-index, expecting key]
    line, pos = 1, 0
    for match in _TOKEN.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        token = match.group()
        top = stack[-1] if stack else None
        if top is not None and top[2] and token.startswith('"'):
            top[1] = json.loads(token)
            top[2] = False
            at = (*top[0], top[1])
            if at in lines:
                duplicates.append((at, line))
            lines.setdefault(at, line)
            continue
        if token in ",:":
            if token == "," and top is not None:
                if isinstance(top[1], int):
                    top[1] += 1
                else:
                    top[2] = True
            continue
        if token in "}]":
            stack.pop()
            continue
        here: JsonPath = (*top[0], top[1]) if top is not None else ()
        if top is not None and isinstance(top[1], int):
            lines.setdefault(here, line)
        if token == "{":
            stack.append([here, None, True])
        elif token == "[":
            stack.append([here, 0, False])
    return lines, duplicates
