"""Tool grants: what a task file lets a run read, change and call (SPEC, "Agent tools").

A task file in git grants tools; calendar text never does. `parse_grants` reads a
task's `tools:` block strictly (unknown keys and bad globs are errors with the
line); `grants_for` decides at run time which grants a run really gets:

- a hand-written task: its own `tools:`;
- an occurrence made from an event whose DESCRIPTION starts with `task: <id>`: the
  tools of `tasks/<id>.yaml` as it is now (the words and the grants live in git);
- an occurrence whose instructions are the event's own text: none, unless its
  calendar is `trusted: true` in runner.yaml, in which case its own file's `tools:`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import RunnerError

GRANT_KEYS = ("read", "write", "mcp")
SHELL = "shell"  # `shell: true`: the claude-code brain's shell (Bash); no other brain has one
_SERVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_MAX_TURNS = 20


@dataclass(frozen=True)
class ToolGrants:
    read: tuple[str, ...] = ()  # globs relative to the home
    write: tuple[str, ...] = ()  # create or replace; implies read
    mcp: tuple[str, ...] = ()  # server names in <home>/.mcp.json
    shell: bool = False  # any command, as the user: the claude-code brain only

    @property
    def empty(self) -> bool:
        return not (self.read or self.write or self.mcp or self.shell)

    @property
    def readable(self) -> tuple[str, ...]:
        return self.read + tuple(g for g in self.write if g not in self.read)

    def to_json(self) -> dict[str, list[str] | bool]:
        out: dict[str, list[str] | bool] = {
            k: list(getattr(self, k)) for k in GRANT_KEYS if getattr(self, k)
        }
        if self.shell:
            out[SHELL] = True
        return out


NO_TOOLS = ToolGrants()


def check_glob(glob: str) -> str | None:
    """Why `glob` cannot be a grant, or None when it can."""
    if not glob.strip():
        return "is empty"
    if glob.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:", glob):
        return "must be relative to the home"
    if ".." in re.split(r"[/\\]", glob):
        return "must not contain '..'"
    return None


def parse_grants(value: Any, fail: Callable[[str], RunnerError]) -> ToolGrants:
    """The `tools:` block of a task file; `fail(message)` makes the error to raise."""
    if value is None:
        return NO_TOOLS
    if not isinstance(value, dict):
        raise fail("'tools' must be a mapping with read, write and mcp lists")
    for key in value:
        if key not in (*GRANT_KEYS, SHELL):
            known = ", ".join((*GRANT_KEYS, SHELL))
            raise fail(f"unknown key '{key}' in tools (known: {known})")
    shell = value.get(SHELL, False)
    if not isinstance(shell, bool):
        raise fail("'tools.shell' must be true or false")
    lists: dict[str, tuple[str, ...]] = {}
    for key in GRANT_KEYS:
        items = value.get(key) or []
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise fail(f"'tools.{key}' must be a list of text")
        for item in items:
            why = _check_server(item) if key == "mcp" else check_glob(item)
            if why:
                raise fail(f"tools.{key}: {item!r} {why}")
        lists[key] = tuple(dict.fromkeys(items))
    return ToolGrants(**lists, shell=shell)


def _check_server(name: str) -> str | None:
    return None if _SERVER.fullmatch(name) else "is not a server name"


def positive(value: Any, name: str, fail: Callable[[str], RunnerError]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(f"'{name}' must be a whole number ≥ 1")
    return value


def describe(grants: ToolGrants) -> list[str]:
    """One line per grant, for a person: `read notes/**, plans/**`."""
    lines = [f"{k} {', '.join(getattr(grants, k))}" for k in GRANT_KEYS if getattr(grants, k)]
    return [*lines, "shell (claude-code)"] if grants.shell else lines


def trusted_names(calendars: Sequence[Any] | None) -> frozenset[str]:
    """The names of the calendars runner.yaml marks `trusted: true`."""
    return frozenset(c.name for c in calendars or () if getattr(c, "trusted", False))
