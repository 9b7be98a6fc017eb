"""Shared by the claude-code brain's tests: the skip when the bundled CLI cannot run,
a home configured for the brain, and readers of what the fake Messages API received
and what the log holds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.brain.claude_code import ClaudeCodeBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.logs import store as logs
from runner.run.executor import RunOutcome, run_task
from runner.settings import Settings, load_settings
from tests.fake_anthropic import Recorded


def _cli_runs() -> str | None:
    """Why the bundled CLI cannot run here, or None when it can."""
    try:
        import claude_agent_sdk
    except ImportError:
        return "claude-agent-sdk is not installed (pip install '.[claude-code]')"
    cli_path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not cli_path.is_file():
        return f"the claude-agent-sdk wheel has no bundled CLI at {cli_path}"
    try:
        done = subprocess.run([cli_path, "--version"], capture_output=True, timeout=60)
    except OSError as exc:
        return f"the bundled Claude Code CLI does not start here: {exc}"
    if done.returncode != 0:
        return f"the bundled Claude Code CLI fails here: {done.stderr[-300:]!r}"
    return None


WHY_NOT = _cli_runs()
needs_cli = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


def configure(home: Home, *, timeout: str = "20s", max_retries: int = 2) -> Settings:
    home.settings_file.write_text(
        "brain:\n  provider: claude-code\n  model: claude-sonnet-5-5\n"
        f"  timeout: {timeout}\n  max_retries: {max_retries}\n",
        encoding="utf-8",
    )
    return load_settings(home.settings_file)


def task(home: Home, instructions: str, task_id: str = "hello", extra: str = "") -> None:
    body = "\n".join("  " + line for line in instructions.splitlines())
    (home.tasks / f"{task_id}.yaml").write_text(
        f"title: Hello\ninstructions: |\n{body}\n{extra}", encoding="utf-8"
    )


def run(home: Home, settings: Settings, task_id: str = "hello") -> RunOutcome:
    from runner.brain.claude_code import ClaudeCodeBrain

    brain = ClaudeCodeBrain(settings.brain, home.root)
    return run_task(home, settings, task_id, brain, SystemClock())


def system_text(request: Recorded) -> str:
    system = request.body.get("system") or []
    return system if isinstance(system, str) else "\n".join(b.get("text", "") for b in system)


def user_texts(request: Recorded) -> list[str]:
    out: list[str] = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        out += [content] if isinstance(content, str) else [b.get("text", "") for b in content]
    return out


def stored(home: Home, key: str = "hello") -> list[dict[str, Any]]:
    """The log's execution records as they are on disk."""
    lines = logs.log_path(home, key).read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "execution"]


def transcripts(config: Path) -> list[Path]:
    return [p for p in config.rglob("*.jsonl") if "projects" in p.parts]


def our_cli_children() -> list[str]:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "claude" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{child.pid} {child.cmdline()[:2]}")
        except psutil.NoSuchProcess:
            continue
    return found


GRANTS = """\
tools:
  read: ["notes/**"]
  write: ["plans/**"]
"""


def run_brain(home: Home, settings: Settings) -> tuple[RunOutcome, ClaudeCodeBrain]:
    brain = ClaudeCodeBrain(settings.brain, home.root)
    return run_task(home, settings, "hello", brain, SystemClock()), brain


def offered(request: Recorded) -> list[str]:
    """The tools a request offers the model (Claude Code's inert placeholder left out)."""
    names = (t["name"] for t in request.body.get("tools", []))
    return sorted(n for n in names if n != "DeferredToolPlaceholder")
