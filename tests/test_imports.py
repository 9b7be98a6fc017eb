"""`list`, `check`, `next` and `log` must stay light: they never import the SDKs; a run
without MCP servers never imports the `mcp` SDK."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runner.home import Home
from tests.conftest import kill_at

PROBE = """
import sys
from runner.cli.main import main
sys.argv = ["runner", "--home", sys.argv[1], *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
HEAVY = (
    "anthropic",
    "caldav",
    "watchdog",
    "httpx",
    "httpx2",
    "mcp",
    "claude_agent_sdk",
    "psutil",
    "apprise",
)
heavy = sorted(m for m in HEAVY if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


@pytest.mark.parametrize(
    "command", [["list"], ["check"], ["log", "hello"], ["list", "--json"], ["next"]]
)
def test_light_commands_import_no_sdk(home: Home, command: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(home.root), "run", "hello"],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(home.root), *command],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_a_plain_run_does_not_import_mcp(home: Home) -> None:
    """Even with a .mcp.json in the home, a task that names no server never loads `mcp`."""
    (home.root / ".mcp.json").write_text('{"mcpServers": {"t": {"command": "x"}}}')
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(home.root), "run", "hello"],
        capture_output=True,
        text=True,
        check=True,
    )
    heavy = result.stderr.rsplit("HEAVY=", 1)[1].strip().split(",")
    assert "mcp" not in heavy and "httpx2" not in heavy, result.stderr


@pytest.mark.parametrize("command", [["list"], ["check"]])
def test_light_commands_import_no_sdk_with_the_claude_code_brain(
    home: Home, command: list[str]
) -> None:
    home.settings_file.write_text("brain:\n  provider: claude-code\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(home.root), *command],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_list_and_check_of_a_home_with_targets_import_no_apprise(home: Home) -> None:
    """A home with notification targets and a delivery error on record."""
    home.settings_file.write_text(
        "notify:\n  desktop: {url: 'dbus://'}\n  phone: {url_env: PHONE_URL}\n"
        "notify_default: [desktop, phone]\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(home.root), "notify", "phone"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1  # PHONE_URL is not set: an error on record
    for command in (["list", "--json"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(home.root), *command],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "HEAVY=\n" in result.stderr, result.stderr


def test_light_commands_with_notifications_waiting_import_no_apprise(home: Home) -> None:
    """An outbox entry waiting and a run that died after its record (which `list`
    recovers, deciding its notification again): still nothing is sent or imported."""
    home.settings_file.write_text(
        "notify:\n  phone: {url: 'json://127.0.0.1:9/n'}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )
    (home.tasks / "plan.yaml").write_text(
        "title: Plan\ninstructions: Plan.\nnotify_on: [completed]\n", encoding="utf-8"
    )
    kill_at(home, "executor-after-append", "run", "plan")
    for command in (["list"], ["check"], ["next"], ["list", "--json"]):
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(home.root), *command],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "HEAVY=\n" in result.stderr, result.stderr
    assert os.listdir(home.state / "outbox")  # kept by the recovery, not sent
