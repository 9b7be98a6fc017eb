"""Who may grant tools: a run's grants and turn limits, decided at run time.

SPEC "Agent tools", "Who may grant": tools come from a hand-written task file,
including one an event points at with `task: <id>`; an occurrence whose instructions
come from the event's own DESCRIPTION runs without tools unless its calendar is
`trusted: true`. Calendar text is remote data: whoever can write to a calendar must
not be able to hand the agent a tool.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import RunnerError
from runner.home import Home
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.grants import NO_TOOLS, ToolGrants, trusted_names


@dataclass(frozen=True)
class RunGrants:
    tools: ToolGrants
    max_turns: int | None  # None: the setting's default
    max_run_tokens: int | None
    source: str  # where the grants came from, for a person: "tasks/x.yaml", "none: ..."


def grants_for(home: Home, settings: Settings, task: tasks.Task) -> RunGrants:
    """The grants a run of `task` gets (raises when its `task:` reference is gone)."""
    if not task.is_occurrence:
        return RunGrants(task.tools, task.max_turns, task.max_run_tokens, _rel(home, task))
    if task.ref is not None:
        try:
            ref = tasks.load_task(home, task.ref)
        except RunnerError as exc:
            raise RunnerError(f"task: {task.ref} (named by its event) cannot load: {exc}") from None
        return RunGrants(ref.tools, ref.max_turns, ref.max_run_tokens, _rel(home, ref))
    if task.calendar is not None and task.calendar in trusted_names(settings.calendars):
        return RunGrants(task.tools, task.max_turns, task.max_run_tokens, _rel(home, task))
    why = f"calendar {task.calendar!r} is not trusted" if task.calendar else "calendar text"
    return RunGrants(NO_TOOLS, task.max_turns, task.max_run_tokens, f"none ({why})")


def untrusted_tools_warning(home: Home, settings: Settings, task: tasks.Task) -> str | None:
    """`runner check`'s warning for a `tools:` block in an occurrence file, else None."""
    if not task.is_occurrence or task.tools.empty:
        return None
    if task.ref is None and task.calendar in trusted_names(settings.calendars):
        return None
    return (
        "a `tools:` block in an occurrence file grants nothing: tools come from "
        "hand-written task files (name one with `task: <id>` in the event), or from "
        "a calendar marked `trusted: true` in runner.yaml"
    )


def _rel(home: Home, task: tasks.Task) -> str:
    try:
        return str(task.path.relative_to(home.root))
    except ValueError:
        return str(task.path)
