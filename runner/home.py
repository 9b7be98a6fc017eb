"""The home folder: where every path the runner touches is computed.

`--home DIR`, then `RUNNER_HOME`, then the current directory. Paths derived from
remote data (calendar UIDs) go through keys.py first and are checked to stay inside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError

# Never written by a tool or `output:`, nor read by a tool (SPEC "Agent tools"); .git
# at any depth (a nested repository).
FORBIDDEN_TOP = (".git", ".runner", "logs")
# The files that grant: settings (trusted calendars), MCP commands, task files
# (tools:). Written only under a write grant that names them (tools/paths.py), never
# by `output:`.
CONTROL_FILES = ("runner.yaml", ".mcp.json")
CONTROL_DIRS = ("tasks",)


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / "runner.yaml"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def calendars(self) -> Path:
        return self.root / "calendars"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def archive(self) -> Path:
        return self.logs / "archive"

    @property
    def state(self) -> Path:
        """Machine-local runtime state; can be deleted at any time."""
        return self.root / ".runner"

    @property
    def locks(self) -> Path:
        return self.state / "locks"

    def inside(self, path: Path) -> Path:
        """Refuse any path that would leave the home (defence in depth for remote data)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise UsageError(f"refusing a path outside the home: {path}")
        return path


def resolve_home(option: str | Path | None) -> Home:
    chosen = option if option is not None else os.environ.get("RUNNER_HOME") or "."
    root = Path(chosen).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageError(f"home is not a folder: {root}")
    return Home(root.absolute())
