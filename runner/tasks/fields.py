"""Every key a task file may hold, declared once: its part of the file and its schema.

The loader (files.py) takes its key sets from here (an unknown key is an error, with
a did-you-mean), and the JSON Schema that editors validate with (runner/schema.py) is
generated from the same table. A new task key is one entry here (and its check in
files.py); tests/test_schema.py fails when the two disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.schedule.scheduled import SCHEDULE_KEYS

STATUSES = ("pending", "running", "completed", "failed", "skipped", "cancelled")
_TEXT: dict[str, Any] = {"type": "string"}
_TIME: dict[str, Any] = {"type": ["string", "null"]}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_ON: dict[str, Any] = {"enum": ["completed", "failed", "skipped"]}
_AT = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\d{1,2}:\d{2}\s*$"},
        {"type": "integer", "minimum": 0, "maximum": 1439},
    ]
}


@dataclass(frozen=True)
class TaskField:
    # user and delivery: yours; event: the runner's copy of the event; state: the runner's
    part: str
    schema: dict[str, Any]
    help: str


TASK_FIELDS: dict[str, TaskField] = {
    "title": TaskField("user", _TEXT, "a short name; the event's SUMMARY for an occurrence"),
    "instructions": TaskField(
        "user", {"type": "string", "minLength": 1, "pattern": r"\S"}, "what the agent is asked"
    ),
    "model": TaskField("user", _TEXT, "the model for this task (default: brain.model)"),
    "system": TaskField("user", _TEXT, "a system prompt for this task (default: brain.system)"),
    "max_tokens": TaskField("user", {"type": "integer", "minimum": 1}, "the longest answer"),
    "key": TaskField(
        "user",
        {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
        "the log (series) this task writes to; default: its id",
    ),
    "schedule": TaskField(
        "user",
        {
            "type": "object",
            "properties": {
                "rrule": {"type": "string", "pattern": r"(?i)FREQ=", "description": "an RRULE"},
                "at": _AT,
                "tz": {"type": "string", "minLength": 1, "description": "e.g. Europe/Berlin"},
                "start": {"type": "string", "format": "date"},
            },
            "required": ["rrule", "at", "tz"],
            "additionalProperties": False,
        },
        "fire on a rule, without a calendar: {rrule, at, tz, start?}",
    ),
    "tools": TaskField(
        "user",
        {
            "type": "object",
            "properties": {
                k: {"anyOf": [_NAME, {"type": "array", "items": _NAME}], "description": d}
                for k, d in (
                    ("read", "globs relative to the home the agent may read"),
                    ("write", "globs it may create or replace (implies read)"),
                    ("mcp", "servers by name from the home's .mcp.json"),
                )
            }
            | {
                "shell": {
                    "type": "boolean",
                    "description": "any command, as you: the claude-code brain only",
                }
            },
            "additionalProperties": False,
        },
        "what a run may read, change and call (SPEC: Agent tools)",
    ),
    "max_turns": TaskField(
        "user", {"type": "integer", "minimum": 1}, "model round trips in one run (default 20)"
    ),
    "max_run_tokens": TaskField(
        "user", {"type": "integer", "minimum": 1}, "tokens one run may use (default: none)"
    ),
    "output": TaskField(
        "delivery",
        {"type": "string", "minLength": 1, "not": {"pattern": r"^(/|~|\.\./)"}},
        "also write the final answer here: {date}, {stamp}, {series}, {task}",
    ),
    "notify": TaskField(
        "delivery",
        {"anyOf": [_NAME, {"type": "array", "items": _NAME}]},
        "notification targets by name (default: notify_default)",
    ),
    "notify_on": TaskField(
        "delivery",
        {"anyOf": [_ON, {"type": "array", "items": _ON}]},
        "when to notify: completed, failed, skipped (default: [failed])",
    ),
    "source": TaskField("event", {"enum": ["caldav", "local"]}, "where the event came from"),
    "calendar": TaskField("event", _TEXT, "the event's calendar"),
    "caldav_uid": TaskField("event", {"type": ["string", "number"]}, "the event's UID"),
    "occurrence": TaskField("event", {"type": "string"}, "the occurrence's start"),
    "recurrence_id": TaskField("event", _TEXT, "the series key (the log key)"),
    "task": TaskField(
        "event",
        {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
        "the hand-written task the event points at (its tools apply)",
    ),
    "status": TaskField("state", {"enum": list(STATUSES)}, "the runner's state"),
    "attempts": TaskField("state", {"type": "integer", "minimum": 0}, "runs so far"),
    "session_id": TaskField("state", _TIME, "derived from the key"),
    "created": TaskField("state", _TIME, "when the task file was made"),
    "started": TaskField("state", _TIME, "the last run's start"),
    "finished": TaskField("state", _TIME, "the last run's end"),
    "error": TaskField("state", _TIME, "the last run's error"),
}

assert set(TASK_FIELDS["schedule"].schema["properties"]) == set(SCHEDULE_KEYS)


def keys_of(part: str) -> tuple[str, ...]:
    return tuple(name for name, f in TASK_FIELDS.items() if f.part == part)
