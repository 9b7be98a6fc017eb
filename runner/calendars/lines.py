"""Where things are in an .ics file, for `path:line: message`, and safe message text.

icalendar keeps no line numbers, so the text is read a second time here: physical
lines as an editor counts them (CRLF, LF or CR), folded continuation lines joined to
the line they continue, and every component's block (BEGIN … END) with the line of
each of its own properties. The n-th VEVENT block is the n-th VEVENT that icalendar's
`walk()` yields (both in document order), so a problem in an override is reported at
the override's own lines, not its master's.

Calendar text is untrusted: `clean()` makes any text one printable line (control
characters escaped, NUL included, long text cut) before it reaches a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from runner.errors import printable

_BREAK = re.compile(r"\r\n|\r|\n")
_QUOTED = re.compile(r"'([^']*)'")
# VCALENDAR > VEVENT > VALARM is three; deeper is hostile (and would recurse deeply).
MAX_DEPTH = 20


def where(path: object) -> str:
    """A file's path for a problem: a file name can hold control characters too."""
    return clean(str(path), 4096)


def clean(text: str, limit: int = 120) -> str:
    """`text` as one printable line: control and format characters escaped, cut."""
    result = printable(text)
    return result if len(result) <= limit else result[: limit - 1] + "…"


def why_failed(exc: BaseException) -> str:
    """What a library's exception says, as one clean line: a ValueError is the
    library's own words about the data; anything else (TypeError, AttributeError) is
    Python's words about the library, which tell a user nothing, so only its kind."""
    if isinstance(exc, ValueError) and str(exc):
        return clean(str(exc))
    return f"the calendar library failed on it: {type(exc).__name__}"


@dataclass
class Block:
    """One component's lines: its name, BEGIN and END line, and its own properties."""

    name: str
    begin: int  # 1-based line of BEGIN:<name>
    end: int | None = None  # line of END:<name>; None while (or if never) closed
    props: dict[str, list[int]] = field(default_factory=dict)
    children: list[Block] = field(default_factory=list)

    def line(self, prop: str) -> int | None:
        """The first line of `prop` in this block (not in its sub-components)."""
        found = self.props.get(prop.upper())
        return found[0] if found else None


class EventLines:
    """The block structure of one .ics text, with physical line numbers."""

    def __init__(self, text: str) -> None:
        self.physical = _BREAK.split(text)
        self._logical: dict[int, str] = {}  # first physical line → unfolded line
        self.top: list[Block] = []  # top-level blocks (normally VCALENDARs)
        self.structure_error: tuple[int, str] | None = None
        self._parse()

    def _unfolded(self) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for number, line in enumerate(self.physical, start=1):
            if line[:1] in (" ", "\t") and out:
                first, text = out[-1]
                out[-1] = (first, text + line[1:])
            elif line.strip():
                out.append((number, line))
        return out

    def _parse(self) -> None:
        stack: list[Block] = []
        for number, line in self._unfolded():
            self._logical[number] = line
            name = re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()
            value = line.split(":", 1)[-1].strip().upper() if ":" in line else ""
            if name == "BEGIN":
                if len(stack) >= MAX_DEPTH:
                    self._error(number, f"components nested more than {MAX_DEPTH} deep")
                    return
                block = Block(value, number)
                (stack[-1].children if stack else self.top).append(block)
                stack.append(block)
            elif name == "END":
                if stack and stack[-1].name != value and value in (b.name for b in stack):
                    break  # an inner block was left open: reported below
                if not stack or stack[-1].name != value:
                    self._error(number, f"END:{clean(value, 40)} without a matching BEGIN")
                    return
                stack.pop().end = number
            elif stack:
                stack[-1].props.setdefault(name, []).append(number)
        if stack:
            self._error(stack[-1].begin, f"BEGIN:{clean(stack[-1].name, 40)} is never closed")

    def _error(self, line: int, message: str) -> None:
        if self.structure_error is None:
            self.structure_error = (line, message)

    def logical(self, number: int) -> str:
        return self._logical.get(number, "")

    def blocks(self) -> Iterator[Block]:
        """Every block, depth first, in document order."""
        pending = list(reversed(self.top))
        while pending:
            block = pending.pop()
            yield block
            pending.extend(reversed(block.children))

    def first(self, predicate: object, start: int = 0) -> int | None:
        """The first physical line from `start` (0-based) for which predicate holds."""
        for index in range(start, len(self.physical)):
            if callable(predicate) and predicate(self.physical[index]):
                return index + 1
        return None

    def quoted_in(self, message: str) -> int | None:
        """The line a parser's message quotes ('…'), if it quotes one."""
        for fragment in _QUOTED.findall(message):
            if fragment.strip():
                found = self.first(lambda ln, f=fragment: ln.startswith(f))
                if found is not None:
                    return found
        return None
