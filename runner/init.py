"""`runner init`: lay out a home. Never overwrites a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.fsutil import atomic_write
from runner.home import Home
from runner.schema import SCHEMA_FILES, shipped
from runner.settings import settings_template

SCHEMAS = ".schemas"  # the JSON Schemas, copied in so editors find them in the repo
# yaml-language-server resolves a relative $schema path from the file that names it.
SETTINGS_MODELINE = f"# yaml-language-server: $schema={SCHEMAS}/runner.schema.json\n"
TASK_MODELINE = f"# yaml-language-server: $schema=../{SCHEMAS}/task.schema.json\n"

EXAMPLE_TASK = (
    TASK_MODELINE
    + """\
title: Hello
instructions: |
  Say hello, and tell me what you remember from our earlier runs.
"""
)

GITIGNORE = """\
# machine-local runtime state (locks, claims, sync tokens, caches)
.runner/
"""


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: tuple[str, ...]
    kept: tuple[str, ...]


def init_home(home: Home) -> InitResult:
    created: list[str] = []
    kept: list[str] = []
    home.root.mkdir(parents=True, exist_ok=True)
    for folder in (home.tasks, home.calendars, home.logs, home.state):
        if folder.is_dir():
            kept.append(folder.name + "/")
        else:
            folder.mkdir(parents=True)
            created.append(folder.name + "/")
    files = {
        home.settings_file: SETTINGS_MODELINE + settings_template(),
        home.root / ".gitignore": GITIGNORE,
        home.tasks / "hello.yaml": EXAMPLE_TASK,
        **{home.root / SCHEMAS / name: shipped(name) for name in SCHEMA_FILES},
    }
    for path, text in files.items():
        name = str(path.relative_to(home.root))
        if path.exists():
            kept.append(name)
        else:
            atomic_write(path, text)
            created.append(name)
    return InitResult(home.root, tuple(created), tuple(kept))
