"""What a claude-code run is told and allowed, decided without importing the SDK.

- The context (SPEC "Context sent to the brain") goes in through the system prompt,
  appended to Claude Code's own: the task's `system` text, the log's summary header,
  then each recent execution (its instructions, a line per tool call, its answer or
  why it failed). The current instructions are the one user message. Every run is a
  fresh Claude Code session that is not saved (`--no-session-persistence`), with
  auto-memory and CLAUDE.md discovery off: the log stays the one memory.
- The environment keeps Claude Code from any traffic but the Messages API (no
  telemetry, error reports, update checks) and bounds its answer and retries by
  `brain.max_tokens` and `brain.max_retries`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from runner.brain.claude_code_grants import NO_PERMISSIONS, Permissions
from runner.brain.messages import SUMMARY_HEADING, assistant_text
from runner.brain.protocol import BrainRequest, PriorTurn
from runner.errors import BrainError
from runner.settings import BrainSettings
from runner.tasks.grants import NO_TOOLS, ToolGrants
from runner.tools.steps import StepSink

QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
}

UNATTENDED = (
    "You run unattended: a calendar started this task and nobody is watching. No one can "
    "answer a question or approve a permission, so do not ask; a tool call that is "
    "refused stays refused. Your final message is recorded as the answer of this run."
)
MAX_TURNS = "max_turns"
MAX_RUN_TOKENS = "max_run_tokens"
HISTORY_HEADING = "Earlier executions of this task (oldest first), your memory of this series:"


@dataclass(frozen=True)
class Ask:
    """One question for the CLI: the user message and the text for its system prompt."""

    prompt: str
    system_append: str
    model: str
    max_tokens: int
    grants: ToolGrants = NO_TOOLS
    permissions: Permissions = NO_PERMISSIONS
    max_turns: int | None = None
    max_run_tokens: int | None = None
    on_step: StepSink | None = None


def run_env(settings: BrainSettings, max_tokens: int, tags: dict[str, str]) -> dict[str, str]:
    """Variables for the CLI on top of the runner's own environment."""
    return {
        **QUIET_ENV,
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(max_tokens),
        "CLAUDE_CODE_MAX_RETRIES": str(settings.max_retries),
        **tags,
    }


def settings_json() -> dict[str, object]:
    """The `--settings` layer: no memory of Claude Code's own (the log is the memory),
    and no git status or recent commits of the home in the context: they name files
    the grants may not give and carry a history the log does not (and skipping them
    spares the CLI seven git commands at its start)."""
    return {"autoMemoryEnabled": False, "includeGitInstructions": False}


def execution_text(n: int, turn: PriorTurn) -> str:
    parts = [f"## Execution {n}", "Instructions:", turn.instructions.strip() or "(none)"]
    if turn.steps:  # a compact line per tool call; raw tool output is never replayed
        parts += ["Tools used:", *turn.steps]
    parts += ["Answer:", assistant_text(turn).strip()]
    return "\n".join(parts)


def context_text(request: BrainRequest) -> str:
    """The text appended to Claude Code's system prompt for this run."""
    parts: list[str] = []
    if request.system and request.system.strip():
        parts.append(request.system.strip())
    parts.append(UNATTENDED)
    if request.summary and request.summary.strip():
        parts.append(f"{SUMMARY_HEADING}\n\n{request.summary.strip()}")
    if request.history:
        turns = [execution_text(n, turn) for n, turn in enumerate(request.history, 1)]
        parts.append(HISTORY_HEADING + "\n\n" + "\n\n".join(turns))
    return "\n\n".join(parts)


# -- failures in words ------------------------------------------------------------


def describe_result(result: Any, model: str) -> BrainError:
    """A result with `is_error`, in words (SPEC: auth and bad requests are final)."""
    text = redact(str(result.result or "; ".join(result.errors or []) or result.subtype))
    text = re.sub(r"API Error: (\d+ )?", "", text).strip()  # the status is said in words
    status = result.api_error_status
    if result.subtype == "error_max_turns" or result.terminal_reason == "max_turns":
        return BrainError(MAX_TURNS, retryable=False)
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
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return text


# -- the SDK's log ------------------------------------------------------------------


def quiet_sdk_log() -> None:
    """The SDK logs a CLI that was ended (a timeout, a limit) as an ERROR; the run's
    record says why in words, so its log goes to the runner's `--debug` output only."""
    sdk = logging.getLogger("claude_agent_sdk")
    if not sdk.handlers:
        sdk.addHandler(logging.NullHandler())
        sdk.propagate = logging.getLogger("runner").isEnabledFor(logging.DEBUG)


def sdk_leftovers(loop: Any, context: dict[str, Any]) -> None:
    """An SDK task that failed after the CLI was ended (answering a hook of a killed
    process) is expected, not news: `--debug` only. Anything else as asyncio says it."""
    exc = context.get("exception")
    if exc is not None and type(exc).__module__.startswith("claude_agent_sdk"):
        logging.getLogger("runner.brain").debug("claude-code: %s", exc)
        return
    loop.default_exception_handler(context)
