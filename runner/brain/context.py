"""What a brain is asked, built in one place from a series log.

- a run's request: the summary header, the recent executions as prior turns, the
  current instructions with the occurrence's facts (`build_request`);
- the context compression measures: the same without a new prompt (`context_request`);
- a summary's request: the older executions and the previous header, folded into a
  new header (`summary_request`).
"""

from __future__ import annotations

from runner.brain.protocol import BrainRequest, PriorTurn, SummaryRequest
from runner.keys import session_id
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord
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


def turns(records: list[ExecutionRecord]) -> tuple[PriorTurn, ...]:
    return tuple(r.as_turn() for r in records)


def build_request(task: tasks.Task, settings: Settings, contents: logs.LogContents) -> BrainRequest:
    return BrainRequest(
        model=task.model or settings.brain.model,
        max_tokens=task.max_tokens or settings.brain.max_tokens,
        prompt=prompt_for(task),
        session_id=task.session_id,
        system=task.system or settings.brain.system,
        summary=contents.summary_text,
        history=turns(contents.executions),
    )


def context_request(contents: logs.LogContents, settings: Settings) -> BrainRequest:
    """The context the next run of this series starts from (without its new prompt)."""
    return BrainRequest(
        model=settings.brain.model,
        max_tokens=settings.brain.max_tokens,
        prompt="",
        session_id=session_id(contents.key),
        summary=contents.summary_text,
        history=turns(contents.executions),
    )


SUMMARY_SYSTEM = (
    "You keep the memory of a recurring agent task. Your summary replaces older "
    "conversation turns: the next runs of the task see only your summary and the most "
    "recent executions, so whatever you leave out is gone from their context."
)

SUMMARY_PROMPT = """\
Write the new summary header for this recurring task. It replaces the previous \
summary header (if any) and the executions below, which are oldest first.

Keep, in this order, under these four headings:
1. Standing instructions: what the task is asked to do on every run, and how.
2. Facts and decisions: every fact given and decision taken, with its exact names, \
numbers, dates, codes and amounts, and the files and tools each execution used \
(its <tool_calls>).
3. Open items: questions, promises and to-dos not yet resolved.
4. What changed from run to run: how the instructions, the answers and the situation \
developed, most recent last.

Fold the previous summary header in: keep everything it says unless a later \
execution changes it. Use only what is written below. Invent nothing: no fact, name, \
number or conclusion that is not in the text; where something is unclear, say so. \
Write plain text, at most about {cap_tokens} tokens.

<previous_summary>
{previous_summary}
</previous_summary>

<executions>
{executions}
</executions>
"""


def summary_request(
    settings: Settings, contents: logs.LogContents, older: list[ExecutionRecord]
) -> SummaryRequest:
    previous = contents.summary_text or ""
    cap = settings.compression.max_tokens // 2
    return SummaryRequest(
        model=settings.brain.model,
        max_tokens=settings.brain.max_tokens,
        system=SUMMARY_SYSTEM,
        prompt=SUMMARY_PROMPT.format(
            cap_tokens=cap,
            previous_summary=previous or "(none: this is the first summary)",
            executions="\n".join(_execution_text(r) for r in older),
        ),
        previous_summary=previous or None,
        executions=turns(older),
        cap_tokens=cap,
    )


def _execution_text(record: ExecutionRecord) -> str:
    attrs = " ".join(
        f'{name}="{value}"'
        for name, value in (
            ("started", record.started),
            ("occurrence", record.occurrence),
            ("status", record.status),
        )
        if value
    )
    parts = [f"<execution {attrs}>", "<instructions>", record.instructions]
    parts.append("</instructions>")
    if record.steps:  # a compact line per tool call; raw tool output is never replayed
        parts += ["<tool_calls>", *(step.line() for step in record.steps), "</tool_calls>"]
    if record.response:
        parts += ["<response>", record.response, "</response>"]
    if record.error:
        parts.append(f"<error>{record.error}</error>")
    parts.append("</execution>")
    return "\n".join(parts)
