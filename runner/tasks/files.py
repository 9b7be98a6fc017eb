"""Task files: strict loading, and rewriting only the `# runner state` block.

The user's part of a task file (everything above the line `# runner state`) is
never rewritten: comments and formatting stay byte for byte. The runner rewrites the
state block atomically, re-reading the file first so an edit saved meanwhile is kept.
Callers hold the task's series lock (locks.py) around read-modify-write.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from runner import keys
from runner.clock import utc_iso
from runner.errors import TaskFileError, UsageError, did_you_mean
from runner.fsutil import atomic_write
from runner.home import Home
from runner.schedule.scheduled import Schedule, ScheduleError, parse_schedule
from runner.tasks.delivery import Delivery, parse_delivery
from runner.tasks.fields import TASK_FIELDS, keys_of
from runner.tasks.grants import NO_TOOLS, ToolGrants, parse_grants, positive
from runner.tasks.marker import MARKER as MARKER
from runner.tasks.marker import STATE_KEYS, check_round_trip
from runner.tasks.marker import split_text as split_text
from runner.yamlload import Mapping, load_mapping

# A new task key is declared in tasks/fields.py (TASK_FIELDS, with its schema).
USER_KEYS = keys_of("user")
DELIVERY_KEYS = keys_of("delivery")
EVENT_KEYS = keys_of("event")
ALL_KEYS = frozenset(TASK_FIELDS)


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


STATUSES = tuple(TaskStatus)
SOURCES = ("caldav", "local")

# A task id is a hand-written `<key>` or a runner-written `<series-key>/<stamp>`.
_STAMP = r"\d{8}(?:T\d{6}Z?)?"
TASK_ID_RE = re.compile(rf"{keys.KEY_RE.pattern}(?:/{_STAMP})?")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@dataclass(frozen=True)
class TaskState:
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    session_id: str | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Task:
    id: str
    path: Path
    key: str
    title: str
    instructions: str
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    source: str | None = None
    calendar: str | None = None
    caldav_uid: str | None = None
    occurrence: str | None = None
    recurrence_id: str | None = None
    schedule: Schedule | None = None  # fires on its own (schedule/scheduled.py)
    tools: ToolGrants = NO_TOOLS
    max_turns: int | None = None
    max_run_tokens: int | None = None
    ref: str | None = None  # an occurrence's `task:` (the hand-written task it points at)
    state: TaskState = field(default_factory=TaskState)
    delivery: Delivery = field(default_factory=Delivery)  # output, notify, notify_on

    @property
    def session_id(self) -> str:
        return keys.session_id(self.key)

    @property
    def is_occurrence(self) -> bool:
        return "/" in self.id


def check_task_id(task_id: str) -> str:
    if not TASK_ID_RE.fullmatch(task_id) or task_id.split("/")[0] in keys.RESERVED:
        raise UsageError(f"invalid task id {task_id!r}")
    return task_id


def task_path(home: Home, task_id: str) -> Path:
    return home.tasks / f"{check_task_id(task_id)}.yaml"


def task_id_for(home: Home, path: Path) -> str:
    rel = path.relative_to(home.tasks).with_suffix("")
    return "/".join(rel.parts)


def load_task(home: Home, task_id: str) -> Task:
    path = task_path(home, task_id)
    if not path.exists():
        raise UsageError(f"no such task: {task_id} (looked for {path})")
    return parse_task(home, path)


def parse_task(home: Home, path: Path) -> Task:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFileError(path, None, f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise TaskFileError(path, None, f"cannot read: {_read_error(path, exc)}") from None
    return parse_task_text(home, path, text)


def _read_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"a dangling symlink (to {os.readlink(path)})"
    return str(exc.strerror or exc)


def parse_task_text(home: Home, path: Path, text: str) -> Task:
    doc = load_mapping(path, text, TaskFileError)
    r = _Reader(path, doc)
    task_id = task_id_for(home, path)
    _check_keys(r)
    instructions = r.text("instructions", required=True)
    assert instructions is not None
    if not instructions.strip():
        raise r.fail("instructions", "'instructions' is empty")
    max_tokens = r.values.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise r.fail("max_tokens", "'max_tokens' must be a whole number ≥ 1")
    source = r.text("source")
    if source is not None and source not in SOURCES:
        raise r.fail("source", f"'source' must be one of {', '.join(SOURCES)}")
    occurrence = _occurrence_text(r.values.get("occurrence"))
    if r.values.get("occurrence") is not None and occurrence is None:
        raise r.fail("occurrence", "'occurrence' must be a date or a date-time")
    key = _key_of(r, task_id)
    tools = parse_grants(r.values.get("tools"), lambda message: r.fail("tools", message))
    max_turns = positive(r.values.get("max_turns"), "max_turns", lambda m: r.fail("max_turns", m))
    max_run_tokens = positive(
        r.values.get("max_run_tokens"), "max_run_tokens", lambda m: r.fail("max_run_tokens", m)
    )
    ref = r.text("task")
    if ref is not None and (not TASK_ID_RE.fullmatch(ref) or "/" in ref):
        raise r.fail("task", f"'task' must name a hand-written task, not {ref!r}")
    return Task(
        id=task_id,
        path=path,
        key=key,
        title=r.text("title") or task_id,
        instructions=instructions,
        model=r.text("model"),
        system=r.text("system"),
        max_tokens=max_tokens,
        source=source,
        calendar=r.text("calendar"),
        caldav_uid=_scalar_text(r.values.get("caldav_uid")),
        occurrence=occurrence,
        recurrence_id=r.text("recurrence_id"),
        schedule=_schedule_of(doc, path, task_id),
        tools=tools,
        max_turns=max_turns,
        max_run_tokens=max_run_tokens,
        ref=ref,
        state=_parse_state(r.values, r.fail),
        delivery=parse_delivery(r.values, r.fail),
    )


class _Reader:
    """One task file's values; its errors name the file and the line of the key."""

    def __init__(self, path: Path, doc: Mapping) -> None:
        self.path = path
        self.values = doc.values
        self.lines = doc.lines

    def fail(self, key: str | None, message: str) -> TaskFileError:
        return TaskFileError(self.path, self.lines.get(key, 1) if key else 1, message)

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.values.get(key)
        if value is None:
            if required:
                raise self.fail(None, f"missing required key '{key}'")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"'{key}' must be text, not {type(value).__name__}")
        return value


def _check_keys(r: _Reader) -> None:
    for key in r.values:
        if key not in ALL_KEYS:
            hint = did_you_mean(str(key).replace("-", "_").lower(), ALL_KEYS - set(STATE_KEYS))
            if not hint and ("-" in key or key.lower() != key):
                hint = " (keys are snake_case)"
            raise r.fail(key, f"unknown key '{key}'{hint}")
    # Scalars kept as text (an unquoted UID or time may load as a number or datetime);
    # a list or mapping there is a mistake, not text.
    for key in ("caldav_uid", "session_id", "created", "started", "finished", "error"):
        if isinstance(r.values.get(key), list | dict):
            raise r.fail(key, f"'{key}' must be text, not {type(r.values[key]).__name__}")


def _key_of(r: _Reader, task_id: str) -> str:
    """The series key: the folder (or recurrence_id) of an occurrence, else `key` or the id."""
    recurrence_id = r.text("recurrence_id")
    explicit_key = r.text("key")
    series = task_id.split("/")[0] if "/" in task_id else None
    key = (recurrence_id or series) if series else (explicit_key or task_id)
    if not keys.is_valid_key(key):
        where = "key" if explicit_key else ("recurrence_id" if recurrence_id else None)
        raise r.fail(where, f"'{key}' is not a valid key ([A-Za-z0-9][A-Za-z0-9._-]{{0,99}})")
    if not TASK_ID_RE.fullmatch(task_id) or task_id.split("/")[0] in keys.RESERVED:
        # e.g. tasks/work/review.yaml: `run` could never name it, so say so here.
        raise r.fail(
            None,
            f"'{task_id}' is not a task id: name the file tasks/<key>.yaml, "
            "or tasks/<series-key>/<stamp>.yaml for a calendar occurrence",
        )
    return key


def _schedule_of(doc: Mapping, path: Path, task_id: str) -> Schedule | None:
    """The task's `schedule:`, validated here so `check` names file and line."""
    if "schedule" not in doc.values:
        return None
    line = doc.lines["schedule"]
    if "/" in task_id:
        raise TaskFileError(path, line, "'schedule' belongs in a hand-written task file")
    try:
        return parse_schedule(doc.values["schedule"])
    except ScheduleError as exc:
        sub = doc.child_lines.get("schedule", {}).get(exc.key or "", line)
        raise TaskFileError(path, sub, str(exc)) from None


def _scalar_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _occurrence_text(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        return value
    return None


def _time_text(value: Any) -> str | None:
    # Unquoted timestamps load as datetimes; quoted ones as text. Both are accepted.
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return utc_iso(value)
    return str(value)


def _parse_state(values: dict[str, Any], fail: Any) -> TaskState:
    status = values.get("status", TaskStatus.PENDING)
    if status not in STATUSES:
        raise fail("status", f"'status' must be one of {', '.join(STATUSES)}")
    attempts = values.get("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise fail("attempts", "'attempts' must be a whole number ≥ 0")
    error = values.get("error")
    return TaskState(
        status=TaskStatus(status),
        attempts=attempts,
        session_id=_scalar_text(values.get("session_id")),
        created=_time_text(values.get("created")),
        started=_time_text(values.get("started")),
        finished=_time_text(values.get("finished")),
        error=None if error is None else str(error),
    )


def render_state(state: TaskState) -> str:
    out = [MARKER]
    for name in STATE_KEYS:
        out.append(f"{name}: {_render_scalar(getattr(state, name))}")
    return "\n".join(out) + "\n"


def _render_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and (_TIMESTAMP.fullmatch(value) or value in STATUSES):
        return value
    quoted = '"' if isinstance(value, str) and _has_yaml_only_breaks(value) else None
    dumped = yaml.safe_dump(
        value, allow_unicode=True, width=1 << 30, default_flow_style=True, default_style=quoted
    )
    return dumped.removesuffix("\n").removesuffix("\n...")


def _strip_state_keys(user: str) -> str:
    """Remove state keys written outside the block (a hand-made or older file)."""
    if not any(re.search(rf"(?m)^{k}\s*:", user) for k in STATE_KEYS):
        return user
    node = yaml.compose(user, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return user
    lines = user.splitlines(keepends=True)
    drop: set[int] = set()
    for key_node, value_node in node.value:
        if key_node.value in STATE_KEYS and key_node.start_mark.column == 0:
            last = value_node.end_mark.line
            if value_node.end_mark.column == 0 and last > key_node.start_mark.line:
                last -= 1
            drop.update(range(key_node.start_mark.line, last + 1))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


def write_state(task: Task, state: TaskState) -> Task:
    """Rewrite the state block of `task.path`; the caller holds the series lock.

    The file is re-read here, so a user's edit saved since `task` was loaded is kept.
    """
    # Bytes, not read_text: universal newlines would turn a CRLF file's user part LF.
    text = task.path.read_bytes().decode("utf-8")
    user, _ = split_text(text)
    user = _strip_state_keys(user)
    newline = "\r\n" if "\r\n" in user else "\n"
    if user and not user.endswith("\n"):
        user += newline
    new_text = user + render_state(state).replace("\n", newline)
    check_round_trip(task.path, text, new_text)
    atomic_write(task.path, new_text)
    return replace(task, state=state)


def new_task_text(fields: dict[str, Any], state: TaskState) -> str:
    """The text of a runner-written task file: fields, then the state block."""
    body = yaml.dump(
        {k: v for k, v in fields.items() if v is not None},
        Dumper=_TaskDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return body + render_state(state)


def _has_yaml_only_breaks(value: str) -> bool:
    # NEL, LS and PS are line breaks to YAML, which folds them in every style but a
    # double-quoted scalar (there they are escaped as \N, \L, \P).
    return any(ch in value for ch in "\x85\u2028\u2029")


class _TaskDumper(yaml.SafeDumper):
    """Multi-line text as a `|` block, so a runner-written file reads well in an editor."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    if _has_yaml_only_breaks(value):
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TaskDumper.add_representer(str, _represent_text)
