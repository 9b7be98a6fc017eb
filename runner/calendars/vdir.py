"""The vdir snapshot of a CalDAV calendar: `calendars/<name>/<item>.ics`.

One CalDAV object resource (a master event with its overrides) per file, written
exactly as the server sent it, so khal and vdirsyncer read the folder as is. The file
name comes from the item's UID when the UID is made of vdirsyncer's conservative
character set and is not too long; any other UID (`../../x`, `a/b`, NUL, 300
characters, unicode) is hashed. Remote data therefore never becomes a path, and
Home.inside checks the folder as defence in depth.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from runner.fsutil import atomic_write, fsync_dir
from runner.home import Home

EXTENSION = ".ics"
MAX_UID_NAME = 100

# vdirsyncer's SAFE_UID_CHARS; a name must also start with a letter or digit, so that
# it is never hidden (`.x`), never `.`/`..`, and never read as an option (`-x`).
_SAFE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.+-]{{0,{MAX_UID_NAME - 1}}}")
_PARALLEL_FROM = 32  # writes; below this a thread pool costs more than it saves
_WRITERS = 4
_COMPONENTS = frozenset({"VEVENT", "VTODO", "VJOURNAL"})


def hashed_name(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def item_file_name(uid: str | None, href: str) -> str:
    """`<uid>.ics` for a safe UID, else a hash of the UID (or of the href without one)."""
    if uid and _SAFE_NAME.fullmatch(uid):
        return uid + EXTENSION
    return hashed_name(uid if uid else "href:" + href) + EXTENSION


def extract_uid(data: str) -> str | None:
    """The UID of the first VEVENT/VTODO/VJOURNAL, without parsing the whole item.

    A line scanner rather than icalendar: a first sync of thousands of items should
    cost the network, not the parser. UIDs inside VALARMs (RFC 9074) are ignored.
    """
    depth: list[str] = []
    for line in data.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "").split("\n"):
        name, _, value = line.partition(":")
        head = name.split(";", 1)[0].strip().upper()
        if head == "BEGIN":
            depth.append(value.strip().upper())
        elif head == "END":
            if depth:
                depth.pop()
        elif head == "UID" and len(depth) == 2 and depth[1] in _COMPONENTS:
            uid = _property_value(line)
            return uid or None
    return None


def _property_value(line: str) -> str:
    # The value starts after the first ':' that is not inside a quoted parameter.
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[index + 1 :].strip()
    return ""


@dataclass(frozen=True)
class Snapshot:
    """The folder calendars/<name>/ of one synced calendar."""

    home: Home
    name: str

    @property
    def folder(self) -> Path:
        return self.home.calendars / self.name

    def check(self) -> None:
        """Defence in depth: the folder itself (maybe a symlink) stays in the home."""
        self.home.inside(self.folder)

    def path(self, file_name: str) -> Path:
        """A file in the folder. Names are single components (never `..`, `/`, NUL),
        so with the folder checked no name can lead elsewhere; os.replace and unlink
        act on a symlink itself, never on its target."""
        if (
            not file_name.endswith(EXTENSION)
            or file_name.startswith(".")
            or "/" in file_name
            or "\\" in file_name
            or "\0" in file_name
        ):
            raise ValueError(f"not a snapshot file name: {file_name!r}")
        return self.folder / file_name

    def files(self) -> set[str]:
        """The item files now in the folder (hidden and temporary files excluded)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return set()
        return {n for n in names if n.endswith(EXTENSION) and not n.startswith(".")}

    def write(self, file_name: str, data: str) -> None:
        """Atomic; the folder entry is made durable by flush(), once per batch."""
        atomic_write(self.path(file_name), data, sync_folder=False)

    def write_many(self, items: list[tuple[str, str]]) -> None:
        """Several atomic writes at once: each waits on its fsync, and a first sync
        of a thousand items would otherwise spend most of its time waiting in line."""
        if len(items) < _PARALLEL_FROM:
            for name, data in items:
                self.write(name, data)
            return
        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            for future in [pool.submit(self.write, name, data) for name, data in items]:
                future.result()  # the first error, if any, is raised here

    def remove(self, file_name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(file_name).unlink()

    def flush(self) -> None:
        """Make a batch of writes and removals durable: fsync the folder once."""
        if self.folder.is_dir():
            fsync_dir(self.folder)
