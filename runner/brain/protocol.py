"""Brains: one small interface that the executor calls.

The executor never imports `anthropic`: the Anthropic brain is loaded only when
chosen, so commands like `list` stay fast and offline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.errors import BrainError
from runner.tasks.grants import DEFAULT_MAX_TURNS, NO_TOOLS, ToolGrants
from runner.tools.base import ToolProvider
from runner.tools.steps import StepSink


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }

    @property
    def total(self) -> int:
        """Every token of the round trips, cache included (what a spend limit counts)."""
        return self.context_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: v + getattr(other, k) for k, v in self.to_dict().items()})

    @property
    def context_tokens(self) -> int:
        """The size of the conversation after this reply (input, cache and output)."""
        return (
            self.input_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
            + self.output_tokens
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        data = data or {}
        return cls(**{k: int(data.get(k) or 0) for k in cls().to_dict()})


@dataclass(frozen=True)
class PriorTurn:
    """One earlier execution of the same series, as context."""

    instructions: str
    response: str | None
    status: str
    error: str | None = None
    steps: tuple[str, ...] = ()  # a compact line per tool call: `used write_file x.md`


@dataclass(frozen=True)
class BrainRequest:
    model: str
    max_tokens: int
    prompt: str  # the current instructions with the occurrence's facts
    session_id: str
    system: str | None = None
    summary: str | None = None  # the log's summary header text
    history: tuple[PriorTurn, ...] = field(default_factory=tuple)
    # Tools (SPEC "Agent tools"): the grants as data (what a brain may show or map onto
    # its own permissions), and the opened toolset the loop calls (None: no tools).
    grants: ToolGrants = NO_TOOLS
    grants_source: str = ""  # where the grants came from: tasks/x.yaml, none (...)
    tools: ToolProvider | None = field(default=None, compare=False)
    on_step: StepSink | None = field(default=None, compare=False)
    max_turns: int = DEFAULT_MAX_TURNS
    max_run_tokens: int | None = None


@dataclass(frozen=True)
class BrainReply:
    text: str
    model: str
    usage: Usage
    stop_reason: str | None = "end_turn"
    turns: int | None = None  # model round trips, when the brain ran a tool-use loop
    cost_usd: float | None = None  # what the brain reports it cost (claude-code)


class RunStopped(BrainError):
    """A run stopped part-way through its loop: by a limit (`max_turns`,
    `max_run_tokens`) or an API failure after some round trips. Carries what was
    spent, so the failed record still sums every round trip's usage."""

    def __init__(self, message: str, *, retryable: bool, usage: Usage, turns: int) -> None:
        super().__init__(message, retryable=retryable)
        self.usage = usage
        self.turns = turns


def runs_own_tools(brain: object) -> bool:
    """Whether a brain runs the tools itself (claude-code: Claude Code's own tools and
    MCP servers, under the grants): the executor then opens no toolset for it."""
    return bool(getattr(brain, "runs_own_tools", False))


@dataclass(frozen=True)
class SummaryRequest:
    """Fold `executions` (and the previous header) into one summary header text.

    `prompt` is the full instruction for a model (built by compression.py); the
    offline brain ignores it and summarises `previous_summary` and `executions`
    extractively, capped at `cap_tokens`.
    """

    model: str
    max_tokens: int
    system: str
    prompt: str
    previous_summary: str | None
    executions: tuple[PriorTurn, ...]
    cap_tokens: int


TextSink = Callable[[str], None]


class Brain(Protocol):
    name: str

    def describe(self, model: str | None = None) -> str:
        """How the brain is shown to a person: "anthropic (claude-…)", "offline".

        `model` is a task's own model, where it names one.
        """
        ...

    def warm(self) -> None:
        """Pay lazy imports and set-up now, so the first run at its due time does not.

        Optional in spirit: a brain with nothing to prepare does nothing. A broken
        credential is left for the first run to report (raise nothing but RunnerError).
        """
        ...

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        """Answer `request`; stream text chunks to `on_text` as they arrive.

        Raises BrainError on failure (retryable=False for auth and bad requests).
        """
        ...

    def count_tokens(self, request: BrainRequest) -> int:
        """The input size of `request` in tokens (an estimate for the offline brain).

        Used only where no recorded usage exists yet (e.g. an imported log).
        """
        ...

    def summarize(self, request: SummaryRequest) -> BrainReply:
        """Return the new summary header text (no streaming). Raises BrainError."""
        ...
