"""The delivery keys of a task file: `output`, `notify` and `notify_on`.

Only the static rules live here (what can be judged from the text alone, so that
`runner check` names the file and line); deliver/output.py renders the path for one
run and checks it again against the disk (symlinks) before writing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.home import CONTROL_DIRS, CONTROL_FILES, FORBIDDEN_TOP

PLACEHOLDERS = ("date", "stamp", "series", "task")
NOTIFY_ON = ("completed", "failed", "skipped")
DEFAULT_NOTIFY_ON = ("failed",)

_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Delivery:
    """A task's delivery keys as written; `notify` None means the home's default."""

    output: str | None = None
    notify: tuple[str, ...] | None = None
    notify_on: tuple[str, ...] = DEFAULT_NOTIFY_ON

    def to_fields(self) -> dict[str, Any]:
        """As task-file keys (for an occurrence that takes them from `task: <id>`)."""
        return {
            "output": self.output,
            "notify": list(self.notify) if self.notify is not None else None,
            "notify_on": list(self.notify_on) if self.notify_on != DEFAULT_NOTIFY_ON else None,
        }


def output_problem(template: str) -> str | None:
    """What is wrong with an `output:` template, judged from its text, or None."""
    if "\x00" in template:
        return "must not contain a NUL character"
    for name in _FIELD.findall(template):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{name}}} (known: {known})"
    if "{" in _FIELD.sub("", template) or "}" in _FIELD.sub("", template):
        return "has an unmatched { or }"
    if template.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:", template):
        return "must be a path relative to the home, not an absolute path"
    parts = [p for p in re.split(r"[/\\]", template) if p not in ("", ".")]
    if ".." in parts:
        return "must stay inside the home (no '..')"
    if not parts or template.endswith(("/", "\\")):
        return "must name a file"
    if parts[0].casefold() in FORBIDDEN_TOP:
        return f"must not write under {parts[0]}/ (.git/, .runner/ and logs/ are the runner's)"
    if any(p.casefold() == ".git" for p in parts):  # a nested repository's too
        return "must not write under a .git/ folder"
    if parts[0].casefold() in CONTROL_DIRS or "/".join(parts).casefold() in CONTROL_FILES:
        return "must not replace runner.yaml, .mcp.json or a task file (they grant tools)"
    return None


Fail = Callable[[str, str], Exception]


def parse_delivery(values: dict[str, Any], fail: Fail) -> Delivery:
    """The delivery keys of a task file's values; `fail(key, message)` makes the error."""
    output = values.get("output")
    if output is not None:
        if not isinstance(output, str) or not output.strip():
            raise fail("output", "'output' must be a path such as plans/{date}.md")
        problem = output_problem(output)
        if problem is not None:
            raise fail("output", f"'output' {problem}")
    notify = _names(values, "notify", fail)
    notify_on = _names(values, "notify_on", fail)
    for status in notify_on or ():
        if status not in NOTIFY_ON:
            raise fail("notify_on", f"'notify_on' takes {', '.join(NOTIFY_ON)}, not {status!r}")
    return Delivery(output, notify, notify_on if notify_on is not None else DEFAULT_NOTIFY_ON)


def _names(values: dict[str, Any], key: str, fail: Fail) -> tuple[str, ...] | None:
    raw = values.get(key)
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise fail(key, f"'{key}' must be a list of names")
    return tuple(dict.fromkeys(items))
