"""Rendering results for people (stderr/stdout text) and scripts (JSON on stdout)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

JSON_VERSION = 1  # every --json document says which shape it has


def emit_json(document: Mapping[str, Any]) -> None:
    versioned = {"version": JSON_VERSION, **document}
    sys.stdout.write(json.dumps(versioned, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def emit_json_line(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def notice(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def tokens_text(usage: dict[str, int]) -> str:
    total_in = (
        usage.get("input_tokens", 0)
        + usage.get("cache_read_input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
    )
    return f"{total_in} in / {usage.get('output_tokens', 0)} out"


# Calendar text (a SUMMARY) is data: a newline must not break a table row, and an
# escape sequence must not reach the terminal as a command.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({ord("\n"): " ", ord("\r"): " ", ord("\t"): " "})


def plain(text: str) -> str:
    """`text` on one line, with control characters shown escaped."""
    return text.translate(_CONTROLS)


def table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[plain(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


class TextStream:
    """A streamed answer on stdout, as plain text as it arrives (TTY or pipe alike).

    When the reader goes away (`runner run x | head -3`), the rest is dropped quietly:
    the run goes on and its whole answer is still logged.
    """

    def __init__(self) -> None:
        self.open_line = False  # the last chunk did not end its line
        self.closed = False

    def __call__(self, chunk: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        except BrokenPipeError:
            self._close()
            return
        self.open_line = not chunk.endswith("\n")

    def end_line(self) -> None:
        """End an open line (also after an answer that broke off mid-stream)."""
        if self.open_line:
            self("\n")

    def _close(self) -> None:
        # Point stdout at /dev/null so that the flush at exit does not fail again.
        self.closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
