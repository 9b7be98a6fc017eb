"""`list`, `check` and `log` must stay light: they never import the SDKs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.home import Home

PROBE = """
import sys
from runner.cli.main import main
sys.argv = ["runner", "--home", sys.argv[1], *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("anthropic", "caldav", "watchdog", "httpx") if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


@pytest.mark.parametrize("command", [["list"], ["check"], ["log", "hello"], ["list", "--json"]])
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
