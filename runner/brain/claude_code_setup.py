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

from runner.brain.messages import SUMMARY_HEADING, assistant_text
from runner.brain.protocol import BrainRequest, PriorTurn
from runner.settings import BrainSettings

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
HISTORY_HEADING = "Earlier executions of this task (oldest first), your memory of this series:"


def run_env(settings: BrainSettings, max_tokens: int, tag: tuple[str, str]) -> dict[str, str]:
    """Variables for the CLI on top of the runner's own environment."""
    return {
        **QUIET_ENV,
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(max_tokens),
        "CLAUDE_CODE_MAX_RETRIES": str(settings.max_retries),
        tag[0]: tag[1],
    }


def settings_json(allow: list[str]) -> dict[str, object]:
    """The `--settings` layer: only what this run grants, no memory of its own."""
    return {"autoMemoryEnabled": False, "permissions": {"allow": allow, "deny": []}}


def execution_text(n: int, turn: PriorTurn) -> str:
    parts = [f"## Execution {n}", "Instructions:", turn.instructions.strip() or "(none)"]
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
