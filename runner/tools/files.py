"""The built-in file tools: read_file, list_files, search_files, write_file, edit_file.

Offered only as far as a task's grants allow (SPEC "Agent tools"): the read tools
with any `read:` or `write:` glob, the write tools with a `write:` glob. Every path
goes through paths.PathGuard; a refused or failed call is an output with
is_error=True that the model sees, never an exception. Writes are atomic
(fsutil.atomic_write). Every result is capped (100 KB by default), the cut said.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner.fsutil import atomic_write
from runner.home import FORBIDDEN_TOP
from runner.tasks.grants import ToolGrants
from runner.tools.base import ToolOutput, ToolSpec
from runner.tools.paths import PathGuard, Refused, glob_matches, literal_prefix

DEFAULT_CAP = 100 * 1024  # bytes per result
MAX_SEARCH_FILE = 5 * 1024 * 1024  # larger files are not searched
MAX_READ = 20 * 1024 * 1024  # larger files are refused (read whole before offset/limit)
MAX_LINE = 400  # characters of one search hit


class ToolFailed(Exception):
    """A call that cannot be done; its message is the error result."""


def cap_text(text: str, cap: int = DEFAULT_CAP, hint: str = "") -> str:
    """`text` within `cap` bytes of UTF-8, the cut said in a last line (which fits too,
    so capping a capped result again changes nothing)."""
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text
    note = f"\n[cut: the result was {len(data):,} bytes; the first {{kept:,}} are shown{hint}]"
    room = max(0, cap - len(note.format(kept=cap).encode("utf-8")))
    kept = data[:room].decode("utf-8", "ignore")
    return kept + note.format(kept=len(kept.encode("utf-8")))


def _string(arguments: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = arguments.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ToolFailed(f"'{name}' must be text")
    return value


def _int(arguments: dict[str, Any], name: str, minimum: int) -> int | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToolFailed(f"'{name}' must be a whole number ≥ {minimum}")
    return value


def _under(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")


def _schema(required: list[str], **props: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: {"type": t, "description": d} for k, (t, d) in props.items()},
        "required": required,
        "additionalProperties": False,
    }


class FileTools:
    """A ToolProvider over the home's files, confined by a task's grants."""

    def __init__(self, root: Path, grants: ToolGrants, cap: int = DEFAULT_CAP) -> None:
        self.guard = PathGuard(root, grants.read, grants.write)
        self.cap = cap
        self._calls: dict[str, Callable[[dict[str, Any]], str]] = {}
        if self.guard.read:
            self._calls.update(
                read_file=self.read_file, list_files=self.list_files, search_files=self.search_files
            )
        if self.guard.write:
            self._calls.update(write_file=self.write_file, edit_file=self.edit_file)

    # -- the provider interface ---------------------------------------------------

    def specs(self) -> list[ToolSpec]:
        reads = ", ".join(self.guard.read)
        writes = ", ".join(self.guard.write)
        where = f" Paths are relative to the home folder; readable: {reads}."
        all_specs = {
            "read_file": ToolSpec(
                "read_file",
                "Read a text file. offset is the first line (1-based), limit the number "
                "of lines." + where,
                _schema(
                    ["path"],
                    path=("string", "the file, relative to the home"),
                    offset=("integer", "first line to return, 1-based"),
                    limit=("integer", "how many lines to return"),
                ),
            ),
            "list_files": ToolSpec(
                "list_files",
                "List the files matching a glob (* within a folder, ** across folders)." + where,
                _schema(["glob"], glob=("string", "e.g. notes/** or plans/*.md")),
            ),
            "search_files": ToolSpec(
                "search_files",
                "Search file contents with a regular expression; returns path:line: text." + where,
                _schema(
                    ["pattern"],
                    pattern=("string", "a Python regular expression"),
                    glob=("string", "which files to search (default: all readable)"),
                ),
            ),
            "write_file": ToolSpec(
                "write_file",
                f"Create or replace a file with the given content. Writable: {writes}.",
                _schema(
                    ["path", "content"],
                    path=("string", "the file, relative to the home"),
                    content=("string", "the whole new content"),
                ),
            ),
            "edit_file": ToolSpec(
                "edit_file",
                "Replace one exact, unique occurrence of `old` with `new` in a file. "
                f"Writable: {writes}.",
                _schema(
                    ["path", "old", "new"],
                    path=("string", "the file, relative to the home"),
                    old=("string", "the exact text to replace; must occur exactly once"),
                    new=("string", "the replacement"),
                ),
            ),
        }
        return [all_specs[name] for name in self._calls]

    def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        fn = self._calls.get(name)
        if fn is None:
            return ToolOutput(f"unknown tool {name!r}", is_error=True)
        if not isinstance(arguments, dict):
            return ToolOutput("the input must be a JSON object", is_error=True)
        try:
            return ToolOutput(fn(arguments))
        except (Refused, ToolFailed) as exc:
            return ToolOutput(cap_text(str(exc), self.cap), is_error=True)
        except OSError as exc:
            return ToolOutput(f"{exc.strerror or exc}", is_error=True)

    def close(self) -> None:
        pass

    # -- reading --------------------------------------------------------------------

    def _text(self, path: Path, rel: str) -> str:
        if path.is_dir():
            raise ToolFailed(f"{rel}: is a folder; use list_files")
        if not path.exists():
            raise ToolFailed(f"{rel}: no such file")
        if not path.is_file():  # a FIFO or a device would block or never end
            raise ToolFailed(f"{rel}: not a regular file")
        size = path.stat().st_size
        if size > MAX_READ:
            raise ToolFailed(
                f"{rel}: too large to read ({size:,} bytes; the limit is {MAX_READ:,})"
            )
        try:
            return path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ToolFailed(f"{rel}: not UTF-8 text") from None

    def read_file(self, arguments: dict[str, Any]) -> str:
        checked = self.guard.check(arguments.get("path"))
        offset = _int(arguments, "offset", 1)
        limit = _int(arguments, "limit", 1)
        text = self._text(checked.path, checked.rel)
        if offset is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            first = (offset or 1) - 1
            text = "".join(lines[first : first + limit if limit else None])
        return cap_text(text, self.cap, "; read on with offset and limit")

    def _files(self, glob: str) -> Iterator[str]:
        """Readable files matching `glob`, by resolved path relative to the home."""
        prefix = literal_prefix(glob)
        for top in self.guard.walk_roots():
            if _under(prefix, top):
                start = prefix
            elif _under(top, prefix):
                start = top
            else:
                continue
            base = self.guard.root / start if start else self.guard.root
            yield from self._walk(base, glob)

    def _walk(self, base: Path, glob: str) -> Iterator[str]:
        root = self.guard.root
        for folder, dirs, names in os.walk(base):
            here = Path(folder)
            rel_dir = here.relative_to(root).as_posix() if here != root else ""
            dirs[:] = sorted(
                d for d in dirs if d != ".git" and not (rel_dir == "" and d in FORBIDDEN_TOP)
            )
            for name in sorted(names):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if not glob_matches(glob, rel):
                    continue
                try:
                    checked = self.guard.check(rel)  # a symlink is judged by its target
                except Refused:
                    continue
                if checked.path.is_file():
                    yield checked.rel

    def list_files(self, arguments: dict[str, Any]) -> str:
        glob = _string(arguments, "glob") or "**"
        if ".." in glob.split("/") or glob.startswith("/"):
            raise Refused(f"{glob}: give a glob relative to the home, without '..'")
        found = sorted(set(self._files(glob)))
        if not found:
            return f"no readable files match {glob}"
        return cap_text("\n".join(found), self.cap, "; narrow the glob")

    def search_files(self, arguments: dict[str, Any]) -> str:
        pattern = _string(arguments, "pattern") or ""
        glob = _string(arguments, "glob", required=False) or "**"
        if ".." in glob.split("/") or glob.startswith("/"):
            raise Refused(f"{glob}: give a glob relative to the home, without '..'")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolFailed(f"not a regular expression: {exc}") from None
        hits: list[str] = []
        size = 0
        for rel in sorted(set(self._files(glob))):
            path = self.guard.root / rel
            if not path.is_file() or path.stat().st_size > MAX_SEARCH_FILE:
                continue
            try:
                text = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hit = f"{rel}:{number}: {line[:MAX_LINE]}"
                    hits.append(hit)
                    size += len(hit) + 1
            if size > self.cap:
                break
        if not hits:
            return f"no match for {pattern!r} in {glob}"
        return cap_text("\n".join(hits), self.cap, "; narrow the pattern or the glob")

    # -- writing ----------------------------------------------------------------------

    def write_file(self, arguments: dict[str, Any]) -> str:
        checked = self.guard.check(arguments.get("path"), writing=True)
        content = _string(arguments, "content") or ""
        if checked.path.is_dir():
            raise ToolFailed(f"{checked.rel}: is a folder")
        existed = checked.path.exists()
        atomic_write(checked.path, content)
        size = len(content.encode("utf-8"))
        return f"{'replaced' if existed else 'created'} {checked.rel} ({size:,} bytes)"

    def edit_file(self, arguments: dict[str, Any]) -> str:
        checked = self.guard.check(arguments.get("path"), writing=True)
        old = _string(arguments, "old") or ""
        new = _string(arguments, "new") or ""
        if not old:
            raise ToolFailed("'old' must not be empty")
        text = self._text(checked.path, checked.rel)
        count = text.count(old)
        if count != 1:
            found = "not found" if count == 0 else f"found {count} times; include more context"
            raise ToolFailed(f"{checked.rel}: the old text was {found}")
        atomic_write(checked.path, text.replace(old, new, 1))
        return f"edited {checked.rel}"
