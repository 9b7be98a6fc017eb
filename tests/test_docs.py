"""The README stays true: its settings example loads, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from runner.settings import Settings, load_settings

from .conftest import REPO, cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_settings_example_is_valid(tmp_path: Path) -> None:
    start = README.index("## Settings (`runner.yaml`)")
    block = README[
        README.index("```yaml", start) + len("```yaml") : README.index("```\n", start + 30)
    ]
    path = tmp_path / "runner.yaml"
    path.write_text(block, encoding="utf-8")
    settings = load_settings(path)
    assert settings.calendars is not None and [c.name for c in settings.calendars] == [
        "agent",
        "local",
    ]
    assert settings.compression == Settings().compression


def test_every_command_in_the_table_exists(tmp_path: Path) -> None:
    start = README.index("## Command line")
    commands = re.findall(r"^\| `runner (\w+)", README[start:], flags=re.MULTILINE)
    assert set(commands) >= {"init", "check", "list", "next", "run", "sync", "tick", "watch"}
    for command in commands:
        result = cli(tmp_path, command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "Usage:" in result.stdout
