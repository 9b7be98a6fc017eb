"""Starting the Claude Code CLI for a run before the SDK is imported.

Importing `claude_agent_sdk` costs about half a second of CPU (it imports the `mcp`
package, hundreds of pydantic models); the CLI needs about a quarter of a second to
start before it reads its first line. Started first, the CLI boots on the other core
while the SDK is imported, and the SDK then drives it through a transport of ours
(claude_code_transport.py) with its own control protocol, hooks and messages.

So the command line and environment are built here exactly as the SDK's own
subprocess transport builds them for the options the brain passes
(tests/test_claude_code_cli.py compares the two), without importing the SDK: the
bundled CLI and the SDK's version are found through the package's files.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.brain.claude_code_grants import Permissions
from runner.errors import BrainError

if TYPE_CHECKING:
    from anyio.abc import Process

MISSING = "the claude-code brain needs the claude-agent-sdk package: pip install '.[claude-code]'"

# Where the SDK looks for `claude` when it has no bundled one and none is on PATH.
FALLBACKS = (
    ".npm-global/bin/claude",
    "/usr/local/bin/claude",
    ".local/bin/claude",
    "node_modules/.bin/claude",
    ".yarn/bin/claude",
    ".claude/local/claude",
)


def sdk_folder() -> Path:
    """The installed `claude_agent_sdk` package's folder, found without importing it."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or spec.origin is None:
        raise BrainError(MISSING, retryable=False)
    return Path(spec.origin).parent


def import_sdk() -> None:
    """Import the SDK with the garbage collector paused, then freeze what exists: the
    hundreds of classes it builds stay for the process's life, so a collection that
    walks them (during the import, or the first ones after it) only costs time:
    about 50 ms of CPU in a `runner run`. Once only: a long-lived process (watch)
    must not freeze what its later runs leave for the collector."""
    if sys.modules.get("claude_agent_sdk") is not None:
        return
    paused = gc.isenabled()
    gc.disable()
    try:
        import claude_agent_sdk  # noqa: F401
    except ImportError as exc:
        raise BrainError(f"{MISSING} ({exc})", retryable=False) from None
    finally:
        gc.freeze()  # what it built stays for good: no later collection walks it
        if paused:
            gc.enable()


def find_cli(explicit: Path | None) -> str:
    """The CLI to run: the one given, else the SDK's bundled one, else `claude`."""
    if explicit is not None:
        return str(explicit)
    bundled = sdk_folder() / "_bundled" / ("claude.exe" if os.name == "nt" else "claude")
    if bundled.is_file():
        return str(bundled)
    if found := shutil.which("claude"):
        return found
    for place in FALLBACKS:
        path = Path.home() / place
        if path.is_file():
            return str(path)
    raise missing_cli("Claude Code not found")


def missing_cli(detail: str) -> BrainError:
    return BrainError(
        f"the Claude Code CLI is missing ({detail}): reinstall claude-agent-sdk, "
        "whose wheel bundles it, or put `claude` on PATH",
        retryable=False,
    )


def sdk_version() -> str:
    """The SDK's version, as it tells the CLI (read from its `_version.py`)."""
    try:
        text = (sdk_folder() / "_version.py").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    found = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    return found.group(1) if found else "unknown"


def command(
    cli: str,
    *,
    system_append: str,
    model: str,
    perms: Permissions,
    max_turns: int | None,
    settings: dict[str, Any],
) -> list[str]:
    """The CLI's arguments, in the SDK's order, for the options ClaudeCodeBrain sets."""
    argv = [cli, "--output-format", "stream-json", "--verbose"]
    argv += ["--append-system-prompt", system_append, "--tools", ",".join(perms.tools)]
    if perms.allowed:
        argv += ["--allowedTools", ",".join(perms.allowed)]
    if max_turns:
        argv += ["--max-turns", str(max_turns)]
    if model:
        argv += ["--model", model]
    argv += ["--permission-mode", "dontAsk", "--settings", json.dumps(settings)]
    if perms.mcp_servers:
        argv += ["--mcp-config", json.dumps({"mcpServers": perms.mcp_servers})]
    argv += ["--include-partial-messages", "--strict-mcp-config", "--setting-sources="]
    argv += ["--no-session-persistence", "--input-format", "stream-json"]
    return argv


def environment(own: dict[str, str], cwd: Path) -> dict[str, str]:
    """The CLI's environment: the runner's, the run's own variables, and the SDK's."""
    env = {k: v for k, v in os.environ.items() if k != "CLAUDECODE"}  # not nested
    env = {**env, "CLAUDE_CODE_ENTRYPOINT": "sdk-py", **own}
    env["CLAUDE_AGENT_SDK_VERSION"] = sdk_version()
    env.pop("CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP", None)  # an outer session's label
    env.setdefault("CLAUDE_CODE_SDK_READS_SESSION_STATE", "1")  # when the run is over
    env["PWD"] = str(cwd)
    return env


async def spawn(argv: list[str], env: dict[str, str], cwd: Path) -> Process:
    """Start the CLI with pipes for its three streams; a missing CLI in words."""
    import anyio

    try:
        return await anyio.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, env=env,
        )  # fmt: skip
    except FileNotFoundError:
        if not cwd.is_dir():
            raise BrainError(f"the home {cwd} is gone") from None
        raise missing_cli(f"Claude Code not found at: {argv[0]}") from None
    except OSError as exc:  # not executable, not a program
        raise missing_cli(f"Claude Code cannot start from {argv[0]}: {exc.strerror}") from None
