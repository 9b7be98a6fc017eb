"""What crosses from an MCP server to the model: tool names and results.

Names are `mcp__<server>__<tool>` within the Messages API's rules; a result's content
blocks become the text the model sees (non-text content is named, not inlined), capped;
messages that may reach a log have the values of `${VAR}` replaced by `***`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from runner.tools.base import ToolOutput

if TYPE_CHECKING:
    from mcp.types import CallToolResult

MAX_OUTPUT = 100_000  # characters of one call's result; the cut is said in the result
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64  # the Messages API's limit on tool names


def tool_output(result: CallToolResult) -> ToolOutput:
    """An MCP result as the text the model sees; non-text content is named, not inlined."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(getattr(block, "text", ""))
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {getattr(resource, 'uri', '')}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {getattr(block, 'uri', '')}]")
        else:
            parts.append(f"[{kind} content: {getattr(block, 'mime_type', '') or 'no type'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > MAX_OUTPUT:
        cut = len(text) - MAX_OUTPUT
        text = f"{text[:MAX_OUTPUT]}\n[cut: {cut} more characters not shown]"
    return ToolOutput(text, is_error=bool(result.is_error))


def tool_name(server: str, tool: str, taken: dict[str, Any]) -> str:
    """`mcp__<server>__<tool>` in the characters and length the Messages API accepts."""
    name = f"mcp__{server}__{_TOOL_NAME.sub('_', tool)}"
    if len(name) <= _MAX_NAME and name not in taken:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


class Redactor:
    """Hides the values `${VAR}` expanded to, in any message that may reach a log."""

    def __init__(self, secrets: set[str]) -> None:
        self.secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text
