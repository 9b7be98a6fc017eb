"""What every tool provider offers the brain's tool-use loop: specs in, outputs out.

A provider (the built-in file tools, an MCP server) never raises for a failed call:
a refused path, a bad argument or a server error is an output with is_error=True that
the model sees, and the run goes on. Only a provider that cannot start raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from runner.errors import RunnerError


@dataclass(frozen=True)
class ToolSpec:
    name: str  # as the model sees it: read_file, mcp__git__git_status, ...
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutput:
    text: str
    is_error: bool = False


class ToolProvider(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run one call; errors are outputs with is_error=True, never exceptions."""
        ...

    def close(self) -> None: ...


class ToolStartError(RunnerError):
    """A tool provider (an MCP server) could not start; the run fails retryably."""
