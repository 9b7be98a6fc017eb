"""What a brain is asked: the request for a run, and the context a log gives it.

One place builds every request from a log: a run's (the summary header, the recent
executions as prior turns, the current instructions with the occurrence's facts) and
the context compression measures (the same, without a new prompt).
"""

from __future__ import annotations

from runner.brain.protocol import BrainRequest, PriorTurn
from runner.logs import store as logs
from runner.settings import Settings
from runner.tasks import files as tasks


def prompt_for(task: tasks.Task) -> str:
    """The current instructions with the occurrence's facts."""
    facts = [f"Title: {task.title}"]
    if task.occurrence:
        facts.append(f"Scheduled: {task.occurrence}")
    if task.calendar:
        facts.append(f"Calendar: {task.calendar}")
    return task.instructions.rstrip("\n") + "\n\n---\n" + "\n".join(facts)


def history_from(contents: logs.LogContents) -> tuple[PriorTurn, ...]:
    return tuple(r.as_turn() for r in contents.executions)


def build_request(task: tasks.Task, settings: Settings, contents: logs.LogContents) -> BrainRequest:
    return BrainRequest(
        model=task.model or settings.brain.model,
        max_tokens=task.max_tokens or settings.brain.max_tokens,
        prompt=prompt_for(task),
        session_id=task.session_id,
        system=task.system or settings.brain.system,
        summary=contents.summary_text,
        history=history_from(contents),
    )
