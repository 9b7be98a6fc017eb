"""The trust boundary of the file tools: every path a model names is checked here.

A path is text from the model, so it is treated as hostile. `PathGuard.check` refuses
absolute paths and any `..` outright, then resolves the rest (symlinks included)
BEFORE matching: a symlink that leaves the home, or one inside it that points into
`.git/`, `.runner/` or `logs/`, is judged by where it really leads. Only the resolved
path, relative to the resolved home, is matched against the grant globs.

A home may keep runner.yaml, tasks/ or logs/ elsewhere in itself behind a symlink
(dotfiles style): those real places are guarded as the names themselves are.

Globs: `*` matches within one path part, `**` any number of parts (`notes/**` is
everything under notes/), `?` one character; `[...]` as in fnmatch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from runner.home import CONTROL_DIRS, CONTROL_FILES, FORBIDDEN_TOP

# FORBIDDEN_TOP: never readable or writable by a tool. CONTROL_FILES/DIRS: the files
# that grant; a model writing one could widen its own grants on the next run, so a
# write there needs a write glob that names the place literally (`tasks/**`,
# `runner.yaml`); `**` or `*.yaml` never reaches it. Reading them stays as granted.


class Refused(Exception):
    """A path the tools will not touch; its message is what the model sees."""


@functools.lru_cache(maxsize=256)
def glob_regex(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:[^/]*/)*")  # zero or more whole parts
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out))


def glob_matches(glob: str, rel: str) -> bool:
    glob = glob.strip().removeprefix("./")
    if glob.endswith("/"):
        glob += "**"
    return glob_regex(glob).fullmatch(rel) is not None


def literal_prefix(glob: str) -> str:
    """The folder part of `glob` before its first wildcard: where a walk may start."""
    parts: list[str] = []
    for part in PurePosixPath(glob).parts[:-1]:
        if any(c in part for c in "*?["):
            break
        parts.append(part)
    return "/".join(parts)


@dataclass(frozen=True)
class Checked:
    path: Path  # the resolved absolute path
    rel: str  # relative to the resolved home, with /


def names_literally(glob: str, place: str, folder: bool) -> bool:
    """Whether `glob` names `place` (casefolded, home-relative) without a wildcard
    before it: `tasks/**` names the folder tasks, `runner.yaml` the file."""
    text = glob.strip().removeprefix("./").casefold()
    wild = min((i for i, c in enumerate(text) if c in "*?["), default=len(text))
    return text[:wild].startswith(place + "/") if folder else text == place


def is_forbidden(rel: str) -> bool:
    # casefold: on a case-insensitive disk (macOS) Logs/ is logs/
    parts = rel.casefold().split("/")
    return parts[0] in FORBIDDEN_TOP or ".git" in parts


def _real_places(root: Path, names: Iterable[str]) -> tuple[str, ...]:
    """Where `names` (top-level in the home) really are, casefolded, when a symlink
    puts one elsewhere in the home; their own names are always included."""
    places = [name.casefold() for name in names]
    for name in names:
        try:
            real = (root / name).resolve()
        except (OSError, RuntimeError):  # a symlink loop: nothing behind it to reach
            continue
        if real != root and real.is_relative_to(root):
            places.append(real.relative_to(root).as_posix().casefold())
    return tuple(dict.fromkeys(places))


def _under(rel: str, place: str) -> bool:
    return rel == place or rel.startswith(place + "/")


class PathGuard:
    def __init__(self, root: Path, read: Iterable[str], write: Iterable[str]) -> None:
        self.root = root.resolve()
        self.write = tuple(write)
        self.forbidden_places = _real_places(self.root, FORBIDDEN_TOP)
        self.control_files = _real_places(self.root, CONTROL_FILES)
        self.control_dirs = _real_places(self.root, CONTROL_DIRS)
        self.read = tuple(read) + tuple(g for g in self.write if g not in tuple(read))

    def check(self, raw: object, *, writing: bool = False) -> Checked:
        """The resolved path for `raw`, or Refused saying why."""
        if not isinstance(raw, str) or not raw.strip():
            raise Refused("path must be a non-empty relative path")
        text = raw.strip()
        if "\x00" in text:
            raise Refused("path contains a NUL character")
        if text.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", text):
            raise Refused(f"{text}: absolute paths are refused; give a path relative to the home")
        if ".." in re.split(r"[/\\]", text):
            raise Refused(f"{text}: '..' is refused; give a path inside the home")
        resolved = (self.root / text).resolve()
        if not resolved.is_relative_to(self.root):
            raise Refused(f"{text}: leads outside the home (through a symlink)")
        rel = resolved.relative_to(self.root).as_posix()
        self.forbidden(text, rel)
        globs = self.write if writing else self.read
        if writing:
            self.control(text, rel, globs)
        if not any(glob_matches(g, rel) for g in globs):
            what = "write" if writing else "read"
            shown = rel if rel == text.strip("/") else f"{text} (→ {rel})"
            raise Refused(f"{shown}: not granted to {what} (granted: {', '.join(globs) or 'none'})")
        return Checked(resolved, rel)

    def is_forbidden(self, rel: str) -> bool:
        """Under .git/, .runner/ or logs/, or where a symlink among them really leads."""
        folded = rel.casefold()
        return is_forbidden(rel) or any(_under(folded, p) for p in self.forbidden_places)

    def forbidden(self, text: str, rel: str) -> None:
        if self.is_forbidden(rel):
            where = rel if rel == text.strip("/") else f"{text} (→ {rel})"
            raise Refused(f"{where}: .git/, .runner/ and logs/ are never open to tools")

    def control(self, text: str, rel: str, globs: Iterable[str]) -> None:
        folded = rel.casefold()
        files = [(p, False) for p in self.control_files if folded == p]
        folders = [(p, True) for p in self.control_dirs if folded.startswith(p + "/")]
        places = files + folders
        if not places:
            return
        naming = [g for g in globs if all(names_literally(g, p, d) for p, d in places)]
        if not any(glob_matches(g, rel) for g in naming):
            where = rel if rel == text.strip("/") else f"{text} (→ {rel})"
            raise Refused(
                f"{where}: settings, .mcp.json and task files grant tools, so writing one "
                "needs a write grant that names it (e.g. 'tasks/**'), not a wildcard"
            )

    def readable(self, rel: str) -> bool:
        """Whether an already resolved relative path may be read."""
        if self.is_forbidden(rel):
            return False
        return any(glob_matches(g, rel) for g in self.read)

    def walk_roots(self) -> list[str]:
        """The folders a listing must walk: the literal prefixes of the read globs."""
        prefixes = sorted({literal_prefix(g) for g in self.read})
        roots: list[str] = []
        for p in prefixes:
            if not any(p == r or p.startswith(r + "/") or r == "" for r in roots):
                roots.append(p)
        return roots
