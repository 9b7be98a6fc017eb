"""The two records of a series log, as types: ExecutionRecord and SummaryRecord.

A record read from disk and written back is the same JSON, byte for byte: `from_json`
keeps the document it came from, and `to_json` writes its keys in that order, each
with its original value unless the field was changed (`dataclasses.replace`), and
any field this code does not know (a newer version's, a hand-edited log's) as it was.
A record made here writes its fields in declaration order, an `optional()` one only
when set. Adding a field is one line: `name: type | None = optional()`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from runner.brain.protocol import BrainReply, PriorTurn, Usage
from runner.tasks.files import Task, TaskStatus
from runner.tools.steps import Step

_OPTIONAL = "runner.optional"  # written only when not None
_CODEC = "runner.codec"  # (from JSON, to JSON) for a field that is not a plain value

R = TypeVar("R", bound="Record")


INTERRUPTED = "interrupted"  # the error of a run cut off by a crash, a signal or a stop


def optional() -> Any:
    """A field written only when set: `steps: int | None = optional()`."""
    return field(default=None, metadata={_OPTIONAL: True})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _maybe_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _usage(value: Any) -> Usage:
    if not isinstance(value, Mapping):
        return Usage()
    try:
        return Usage.from_dict(value)
    except (TypeError, ValueError):
        return Usage()  # a hand-edited count: read as none, written back as it was


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _coded(decode: Callable[[Any], Any], encode: Callable[[Any], Any]) -> dict[str, Any]:
    return {_CODEC: (decode, encode)}


def _steps(value: Any) -> tuple[Step, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(Step.from_json(s) for s in value if isinstance(s, Mapping))


USAGE = _coded(_usage, lambda u: u.to_dict())
STEPS = _coded(_steps, lambda steps: [s.to_json() for s in steps])
COUNT = _coded(_count, lambda n: n)


def new_record_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Record:
    """The JSON mapping of a record's fields; see the module docstring."""

    TYPE: ClassVar[str]
    # The document this record was read from (None for a new one): its key order,
    # unknown keys and exact values are written back.
    source: Mapping[str, Any] | None = field(default=None, kw_only=True, compare=False, repr=False)

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any]) -> R:
        values: dict[str, Any] = {}
        for f in _fields(cls):
            if f.name in data:
                values[f.name] = _decode(f, data[f.name])
        return cls(**values, source=dict(data))

    def to_json(self) -> dict[str, Any]:
        own = {"type": self.TYPE}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.metadata.get(_OPTIONAL):
                continue
            own[f.name] = _encode(f, value)
        if self.source is None:
            return own
        out: dict[str, Any] = {}
        known = {f.name: f for f in _fields(type(self))}
        for key, raw in self.source.items():
            spec = known.get(key)
            if spec is None:
                out[key] = raw  # `type`, and a field this version does not know
            elif key in own:
                out[key] = raw if _decode(spec, raw) == getattr(self, key) else own[key]
        for key, value in own.items():
            if key not in self.source and getattr(self, key) != _default(known[key]):
                out[key] = value  # set after reading
        return out


def _fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.name != "source")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _decode(f: dataclasses.Field[Any], raw: Any) -> Any:
    codec = f.metadata.get(_CODEC)
    if codec is not None:
        return codec[0](raw)
    # A text field holds text whatever a hand-edited log says (written back as it was).
    if f.type == "str":
        return _text(raw)
    if f.type == "str | None":
        return _maybe_text(raw)
    return raw


def _encode(f: dataclasses.Field[Any], value: Any) -> Any:
    codec = f.metadata.get(_CODEC)
    return codec[1](value) if codec is not None else value


@dataclass(frozen=True)
class ExecutionRecord(Record):
    """One run of a task, as its series log keeps it (SPEC, "Logs")."""

    TYPE: ClassVar[str] = "execution"

    id: str = ""
    task: str = ""
    session_id: str = ""
    occurrence: str | None = None
    started: str = ""
    finished: str = ""
    status: str = TaskStatus.FAILED  # completed | failed
    model: str | None = None
    instructions: str = ""
    response: str | None = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage, metadata=USAGE)
    error: str | None = None
    retryable: bool | None = optional()  # False: auth / bad request, tick and watch do not retry
    # One object per tool call (SPEC "What is recorded"), and the model round trips.
    steps: tuple[Step, ...] | None = field(default=None, metadata={**STEPS, _OPTIONAL: True})
    turns: int | None = optional()
    cost_usd: float | None = optional()  # what the brain reports the run cost (claude-code)
    output: str | None = optional()  # the file the answer was written to, home-relative

    @property
    def completed(self) -> bool:
        return self.status == TaskStatus.COMPLETED

    @property
    def may_retry(self) -> bool:
        return self.retryable is not False

    def as_turn(self) -> PriorTurn:
        """This execution as a turn of context for the next run or a summary."""
        lines = tuple(step.line() for step in self.steps or ())
        return PriorTurn(self.instructions, self.response, self.status, self.error, lines)

    @classmethod
    def of_run(
        cls,
        task: Task,
        *,
        started: str,
        finished: str,
        status: str,
        model: str | None,
        reply: BrainReply | None = None,
        error: str | None = None,
        retryable: bool = True,
        output: str | None = None,
        record_id: str | None = None,
        steps: Sequence[Step] = (),
        turns: int | None = None,
        usage: Usage | None = None,
    ) -> ExecutionRecord:
        """The record one finished (or interrupted) run appends.

        `usage` and `turns` default to the reply's (a failed loop passes what it spent).
        """
        if usage is None:
            usage = reply.usage if reply else Usage()
        return cls(
            id=record_id or new_record_id(),
            task=task.id,
            session_id=task.session_id,
            occurrence=task.occurrence,
            started=started,
            finished=finished,
            status=status,
            model=reply.model if reply else model,
            instructions=task.instructions,
            response=reply.text if reply else None,
            stop_reason=reply.stop_reason if reply else None,
            usage=usage,
            error=error,
            # Only a final failure says so; every other record leaves the key out.
            retryable=False if status == TaskStatus.FAILED and not retryable else None,
            steps=tuple(steps),
            turns=turns if turns is not None else _turns_of(reply),
            cost_usd=reply.cost_usd if reply else None,
            output=output,
        )


def _turns_of(reply: BrainReply | None) -> int:
    """A reply's round trips: one, unless its brain counted a loop; none without one."""
    if reply is None:
        return 0
    return reply.turns if reply.turns is not None else 1


@dataclass(frozen=True)
class SummaryRecord(Record):
    """The header of a compressed log: what the archived executions said."""

    TYPE: ClassVar[str] = "summary"

    id: str = ""
    created: str = ""
    covers: int = field(default=0, metadata=COUNT)  # executions the header stands for
    usage: Usage = field(default_factory=Usage, metadata=USAGE)
    text: str = ""


LogRecord = ExecutionRecord | SummaryRecord
RECORD_TYPES: dict[str, type[ExecutionRecord] | type[SummaryRecord]] = {
    ExecutionRecord.TYPE: ExecutionRecord,
    SummaryRecord.TYPE: SummaryRecord,
}
