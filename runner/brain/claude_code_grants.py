"""What a claude-code run may do: a task's grants as Claude Code's options, and the
check every tool call passes first (SPEC "Agent tools", "Brains").

Claude Code runs in permission mode `dontAsk`, so a call that is not allowed up
front is refused, never asked: nothing can block an unattended run.

- Offered built-in tools: none without grants; `Read`, `Glob`, `Grep` with read (or
  write) globs; `Write`, `Edit` as well with write globs; `Bash` only when the task
  grants `shell: true` (this brain's own grant: a shell can do anything the user can).
- Allowed: those tools, and `mcp__<server>` for each server the task names, taken
  from the home's `.mcp.json` with its `${VAR}`s expanded; no other MCP config,
  settings file or CLAUDE.md is read.
- Every call first passes `refusal()` (a PreToolUse hook; a hook that fails blocks
  the call): a path must resolve inside the home to a granted glob, exactly as for
  the runner's own file tools (runner/tools/paths.py: no `..`, no symlink out, never
  `.git/`, `.runner/` or `logs/`), and a search (`Glob`, `Grep`) must stay within a
  folder granted whole (`notes/**`), so it cannot list what is not granted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import BrainError, RunnerError
from runner.home import Home
from runner.tasks.grants import ToolGrants
from runner.tools.mcpconfig import HttpServer, expand, load_mcp_config
from runner.tools.paths import PathGuard, Refused, literal_prefix

# What a stdio MCP server may see of the environment besides its own `env`, as with
# the runner's own MCP client (runner/tools/mcp.py): no API key, no token.
SERVER_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR")

READ_TOOLS = ("Read", "Glob", "Grep")
RULE_SAFE = re.compile(r"[A-Za-z0-9._/*?+@~-]+")
WRITE_TOOLS = ("Write", "Edit")
SHELL_TOOLS = ("Bash",)


@dataclass(frozen=True)
class Permissions:
    tools: list[str]  # the built-in tools offered at all
    allowed: list[str]  # allowed without asking; everything else is refused
    mcp_servers: dict[str, dict[str, Any]]  # granted servers, in Claude Code's format

    @property
    def any(self) -> bool:
        return bool(self.tools or self.mcp_servers)


NO_PERMISSIONS = Permissions([], [], {})


def permissions(home: Home, grants: ToolGrants) -> Permissions:
    tools: list[str] = []
    if grants.read or grants.write:
        tools += READ_TOOLS
    if grants.write:
        tools += WRITE_TOOLS
    if grants.shell:
        tools += SHELL_TOOLS
    servers = mcp_servers(home, grants.mcp)
    allowed = [t for t in tools if t not in WRITE_TOOLS]
    # Writes only where granted, in Claude Code's own rules too (`//` is an absolute
    # path; Edit rules cover every file-editing tool): the hook is not the only wall.
    # A path Claude Code's rule syntax cannot carry (a space, a comma, brackets) is
    # left to the hook alone, which then allows and refuses on its own.
    root = home.root.resolve().as_posix().rstrip("/")
    rules = [f"{root}/{edit_glob(glob)}" for glob in grants.write]
    if all(RULE_SAFE.fullmatch(rule) for rule in rules):
        allowed += [f"Edit(/{rule})" for rule in rules]
    else:
        allowed += [t for t in tools if t in WRITE_TOOLS]
    return Permissions(tools, [*allowed, *(f"mcp__{name}" for name in servers)], servers)


def edit_glob(glob: str) -> str:
    glob = glob.strip().removeprefix("./")
    return glob + "**" if glob.endswith("/") else glob


def mcp_servers(home: Home, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The named servers of `.mcp.json`, expanded; an unknown name fails the run."""
    if not names:
        return {}
    try:
        config = load_mcp_config(home)
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            server = config.servers.get(name)
            if server is None:
                raise BrainError(f"MCP server {name}: not in {config.path}", retryable=False)
            server = expand(server, config.path)
            if isinstance(server, HttpServer):
                kind = server.transport  # http or sse: Claude Code names them alike
                out[name] = {"type": kind, "url": server.url, "headers": dict(server.headers)}
            else:
                out[name] = {
                    "type": "stdio",
                    "command": "env",
                    "args": [*scrubbed(server.env), server.command, *server.args],
                    "env": dict(server.env),
                }
        return out
    except BrainError:
        raise
    except RunnerError as exc:
        raise BrainError(f"MCP: {exc}", retryable=False) from None


def scrubbed(own: Mapping[str, str]) -> list[str]:
    """`env` arguments that unset every variable a server should not see.

    Claude Code starts a server with its whole environment (the API key included),
    so the server runs as `env -u NAME ... command`: names only in the arguments,
    never a value, and the server keeps the few variables it needs and its own `env`.
    """
    keep = set(SERVER_ENV) | set(own)
    names = sorted(n for n in os.environ if n not in keep and "=" not in n)
    return [arg for name in names for arg in ("-u", name)]


# -- the check before every call -------------------------------------------------------

PATH_KEYS = {"Read": "file_path", "Write": "file_path", "Edit": "file_path"}


def refusal(home: Path, grants: ToolGrants, tool: str, args: Mapping[str, Any]) -> str | None:
    """Why Claude Code may not make this call, or None when the grants allow it."""
    guard = PathGuard(home, grants.read, grants.write)
    try:
        if tool in PATH_KEYS:
            guard.check(
                relative(guard.root, home, args.get(PATH_KEYS[tool])), writing=tool in WRITE_TOOLS
            )
        elif tool in ("Glob", "Grep"):
            search_root(guard, home, tool, args)
        elif tool in SHELL_TOOLS:
            return None if grants.shell else "no shell is granted to this task"
        elif tool.startswith("mcp__"):
            server = tool.split("__")[1]
            return None if server in grants.mcp else f"MCP server {server} is not granted"
        else:
            return f"{tool} is not granted to this task"
    except Refused as exc:
        return str(exc)
    return None


def relative(root: Path, home: Path, raw: object) -> str:
    """A path Claude Code names (absolute, as its tools use them) relative to the home.

    Only lexical here; PathGuard then resolves symlinks and judges the result.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise Refused("path must be a non-empty path inside the home")
    text = raw.strip()
    if not os.path.isabs(text):
        return text
    normal = os.path.normpath(text)
    for base in {str(home), str(root)}:
        if normal == base:
            return "."
        if normal.startswith(base.rstrip(os.sep) + os.sep):
            return normal[len(base.rstrip(os.sep)) + 1 :]
    raise Refused(f"{text}: outside the home")


def search_root(guard: PathGuard, home: Path, tool: str, args: Mapping[str, Any]) -> None:
    """A Glob or Grep must search a folder granted whole, or read one granted file."""
    for key in ("pattern", "glob") if tool == "Glob" else ("glob",):
        value = args.get(key)
        if isinstance(value, str) and (os.path.isabs(value) or ".." in re.split(r"[/\\]", value)):
            raise Refused(f"{value}: search patterns stay inside the folder searched")
    raw = args.get("path")
    if not raw and tool == "Glob":
        raw = literal_prefix(str(args.get("pattern") or "")) or None  # `notes/**/*.md`
    rel = relative(guard.root, home, raw) if raw else "."
    resolved = (guard.root / rel).resolve()
    if not resolved.is_relative_to(guard.root):
        raise Refused(f"{raw}: leads outside the home (through a symlink)")
    folder = resolved.relative_to(guard.root).as_posix()
    if resolved.is_file():
        guard.check(folder)
        return
    if folder != ".":
        guard.forbidden(str(raw), folder)
    if folder == "." or not any(covers(glob, folder) for glob in guard.read):
        whole = [g for g in guard.read if g.endswith("/**")] or ["none"]
        raise Refused(
            f"{'the home' if folder == '.' else folder}: search only in a folder granted "
            f"whole (granted: {', '.join(whole)}); give it as `path`"
        )


def covers(glob: str, folder: str) -> bool:
    """Whether `glob` grants every file under `folder` (`notes/**` covers notes/a)."""
    glob = glob.strip().removeprefix("./")
    if glob.endswith("/"):
        glob += "**"
    if glob == "**":
        return True
    if not glob.endswith("/**") or any(c in glob[:-3] for c in "*?["):
        return False
    prefix = glob[:-3]
    return folder == prefix or folder.startswith(prefix + "/")
