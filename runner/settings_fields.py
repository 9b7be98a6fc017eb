"""How a setting is declared, checked and shown: the machinery under settings.py.

A setting is a dataclass field made with `setting(kind, help, default)`. Its `Kind`
checks a YAML value and parses it (every message names the setting, and the error
the line of its key); `parse_table` reads a whole table (a dataclass) from those
declarations; `setting_fields` walks them in order (for a schema, a template, the
docs); `template` writes the commented runner.yaml of `runner init`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from runner.errors import SettingsError, did_you_mean

_SPEC = "runner.setting"  # the key of a field's declaration in its metadata

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90s`, `1h30m`, `30d` → seconds."""
    compact = text.replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 1h30m, 30d)")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 300 → 5m, 43200 → 12h, 90 → 90s."""
    for unit in "dhm":
        if seconds and seconds % _UNIT[unit] == 0:
            return f"{int(seconds // _UNIT[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Where:
    """Where a value sits in runner.yaml: its line, and the lines of what it holds."""

    line: int
    keys: dict[str, int] = field(default_factory=dict)  # key → line, in a mapping
    child_keys: dict[str, dict[str, int]] = field(default_factory=dict)  # one level deeper
    items: list[tuple[int, dict[str, int]]] = field(default_factory=list)  # in a list
    child_items: dict[str, list[tuple[int, dict[str, int]]]] = field(default_factory=dict)

    def of(self, key: str) -> Where:
        return Where(
            self.keys.get(key, self.line),
            self.child_keys.get(key, {}),
            items=self.child_items.get(key, []),
        )


class Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int | None, message: str) -> SettingsError:
        return SettingsError(self.path, line, message)

    def keys(
        self, data: Any, allowed: set[str], where: str, lines: dict[str, int], at: int
    ) -> None:
        if not isinstance(data, dict):
            raise self.fail(at, f"{where} must be a mapping")
        for key in data:
            if key not in allowed:
                raise self.fail(
                    lines.get(str(key), at),
                    f"unknown key '{key}' in {where}{did_you_mean(str(key), allowed)}"
                    f" (known: {', '.join(sorted(allowed))})",
                )


class Kind(Protocol):
    """A setting's type: how its YAML value is checked, parsed and shown."""

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> Any: ...

    def show(self, value: Any) -> str: ...


@dataclass(frozen=True)
class Integer:
    minimum: int = 0
    nullable: bool = False  # an explicit null is allowed (and means "no limit")

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> int | None:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise c.fail(at.line, f"{name} must be a whole number ≥ {self.minimum}, not {value!r}")
        return value

    def show(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Flag:
    def parse(self, c: Checker, value: Any, name: str, at: Where) -> bool:
        if not isinstance(value, bool):
            raise c.fail(at.line, f"{name} must be true or false, not {value!r}")
        return value

    def show(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Duration:
    positive: bool = False

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> float:
        if not isinstance(value, str):
            raise c.fail(at.line, f"{name} must be a duration such as 90s or 1h30m, not {value!r}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise c.fail(at.line, f"{name}: {exc}") from None
        if self.positive and seconds <= 0:
            raise c.fail(at.line, f"{name} must be longer than zero, not {value!r}")
        return seconds

    def show(self, value: Any) -> str:
        return format_duration(float(value))


def _password_in(c: Checker, url: str, name: str, at: Where) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError as exc:  # `http://[::1/`: not even a url (not echoed: a secret?)
        raise c.fail(at.line, f"{name} is not a valid url ({exc})") from None


@dataclass(frozen=True)
class Text:
    nullable: bool = False  # an explicit null is allowed (and means the default None)
    pattern: re.Pattern[str] | None = None  # a plain folder name, e.g.
    no_password: bool = False  # a URL that must not carry a password

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or not value:
            raise c.fail(at.line, f"{name} must be a non-empty string")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise c.fail(at.line, f"{name} {value!r} must be a plain folder name")
        if self.no_password and _password_in(c, value, name, at):
            # Secrets never live in runner.yaml (SPEC): say so without echoing it.
            raise c.fail(
                at.line, f"{name} must not contain a password: use password_env or password_cmd"
            )
        return value

    def show(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]
    convert: Callable[[str], Any] = str  # e.g. a StrEnum

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> Any:
        if value not in self.choices:
            words = f"{', '.join(self.choices[:-1])} or {self.choices[-1]}"
            raise c.fail(at.line, f"{name} must be {words}")
        return self.convert(str(value))

    def show(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class TimeOfDay:
    def parse(self, c: Checker, value: Any, name: str, at: Where) -> time:
        # YAML 1.1 reads an unquoted 9:00 as the base-60 number 540: accept that too.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        if isinstance(value, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
            if match and int(match[1]) < 24 and int(match[2]) < 60:
                return time(int(match[1]), int(match[2]))
        raise c.fail(at.line, f'{name} must be a time of day like "09:00", not {value!r}')

    def show(self, value: Any) -> str:
        return f'"{value:%H:%M}"'


@dataclass(frozen=True)
class Table:
    """A nested mapping read into the dataclass `table` (an empty key: every default)."""

    table: type[Any]

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> Any:
        return parse_table(c, self.table, value or {}, name, f"{name}.", at)

    def show(self, value: Any) -> str:
        return ""


ItemCheck = Callable[[Checker, dict[str, Any], str, Where], None]


@dataclass(frozen=True)
class ListOf:
    """A list of mappings, each read into the dataclass `table`; a tuple results."""

    table: type[Any]
    not_a_list: str  # the message when the value is no list
    unique: str | None = None  # a field whose value may appear once
    unique_message: str = "{value!r} is used twice"
    check: ItemCheck | None = None  # a rule across an item's fields

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> tuple[Any, ...]:
        if value is None:
            value = []
        if not isinstance(value, list):
            raise c.fail(at.line, self.not_a_list)
        out: list[Any] = []
        seen: set[Any] = set()
        for index, raw in enumerate(value):
            where = f"{name}[{index}]"
            line, keys = at.items[index] if index < len(at.items) else (at.line, {})
            item_at = Where(line, keys)
            item = parse_table(c, self.table, raw, where, f"{where}.", item_at)
            if self.unique is not None:
                key = getattr(item, self.unique)
                if key in seen:
                    message = self.unique_message.format(value=key)
                    raise c.fail(keys.get(self.unique, line), message)
                seen.add(key)
            if self.check is not None:
                self.check(c, raw, where, item_at)
            out.append(item)
        return tuple(out)

    def show(self, value: Any) -> str:
        return ""


@dataclass(frozen=True)
class Spec:
    kind: Kind
    help: str
    example: str | None = None  # the template's value where the default says nothing
    shown: bool = False  # written uncommented in the template


def setting(
    kind: Kind,
    help: str,
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    example: str | None = None,
    shown: bool = False,
) -> Any:
    """Declare one setting: a dataclass field carrying how it is read and shown."""
    meta = {_SPEC: Spec(kind, help, example, shown)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def declared(table: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(table) if _SPEC in f.metadata)


def parse_table(c: Checker, table: type[Any], raw: Any, where: str, prefix: str, at: Where) -> Any:
    """Check the mapping `raw` against `table`'s declared fields and build it."""
    fields = declared(table)
    c.keys(raw, {f.name for f in fields}, where, at.keys, at.line)
    kwargs: dict[str, Any] = {}
    for f in fields:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name in raw or required:
            spec: Spec = f.metadata[_SPEC]
            kwargs[f.name] = spec.kind.parse(c, raw.get(f.name), prefix + f.name, at.of(f.name))
    return table(**kwargs)


@dataclass(frozen=True)
class SettingField:
    """One declared setting, as `setting_fields` yields it."""

    path: str  # dotted: "brain.model"; a list's item fields as "calendars[].name"
    name: str
    kind: Kind  # Integer(minimum), Duration, Text, Choice(choices), TimeOfDay, Table, ListOf
    help: str
    default: Any  # dataclasses.MISSING for a required field of a list item
    example: str | None
    shown: bool
    depth: int  # 0 at the top, 1 inside a table or a list item


def setting_fields(table: type[Any], prefix: str = "", depth: int = 0) -> Iterator[SettingField]:
    """Every setting of `table` in declaration order, nested tables and list items too."""
    for f in declared(table):
        spec: Spec = f.metadata[_SPEC]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        path = prefix + f.name
        yield SettingField(
            path, f.name, spec.kind, spec.help, default, spec.example, spec.shown, depth
        )
        if isinstance(spec.kind, Table):
            yield from setting_fields(spec.kind.table, path + ".", depth + 1)
        elif isinstance(spec.kind, ListOf):
            yield from setting_fields(spec.kind.table, path + "[].", depth + 1)


def template(table: type[Any], header: str) -> str:
    """A runner.yaml that documents every setting of `table`, commented out but for the
    `shown` ones; it loads as every default."""
    out = [header.rstrip("\n"), ""]
    for f in setting_fields(table):
        if f.depth == 0:
            block = _block(f)
            if len(block) > 1 and out[-1]:  # a table or a list stands apart
                out.append("")
            out += block
            if len(block) > 1:
                out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _line(comment: bool, text: str, help: str) -> str:
    body = f"# {text}" if comment else text
    return f"{body:<26}  # {help}" if help else body


def _block(f: SettingField) -> list[str]:
    if isinstance(f.kind, Table):
        inner = list(setting_fields(f.kind.table))
        if any(g.shown for g in inner):  # the table itself is written: `  # key:` inside
            lines = [_line(False, f"{f.name}:", f.help)]
            lines += [_line(not g.shown, f"  {g.name}: {_value(g)}", _help(g)) for g in inner]
            return [lines[0]] + [_indent_comment(ln) for ln in lines[1:]]
        lines = [_line(True, f"{f.name}:", f.help)]
        return lines + [_line(True, f"  {g.name}: {_value(g)}", _help(g)) for g in inner]
    if isinstance(f.kind, ListOf):
        lines = [_line(True, f"{f.name}:", f.help)]
        for index, g in enumerate(setting_fields(f.kind.table)):
            lead = "  - " if index == 0 else "    "
            lines.append(_line(True, f"{lead}{g.name}: {_value(g)}", _help(g)))
        return lines
    return [_line(not f.shown, f"{f.name}: {_value(f)}", _help(f))]


def _indent_comment(line: str) -> str:
    """`#   model: x` → `  # model: x` under a written table (as a person would)."""
    return "  # " + line[4:] if line.startswith("#   ") else line


def _value(f: SettingField) -> str:
    if f.default is None or f.default is dataclasses.MISSING:
        return f.example or ""
    return f.kind.show(f.default)


def _help(f: SettingField) -> str:
    if isinstance(f.kind, Choice):
        return f"{' | '.join(f.kind.choices)}; {f.help}"
    return f.help
