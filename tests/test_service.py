"""`runner service`: a systemd user unit (and a launchd agent) running the watch at
login; nothing enabled without being asked, no secret in any file it writes."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.home import Home
from runner.init import init_home

from .conftest import cli

SECRET = "hunter2-never-in-a-file"


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A fake user's HOME and XDG_CONFIG_HOME, and a secret in the environment."""
    root = tmp_path / "user"
    return {
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root / ".config"),
        "CALDAV_PASSWORD": SECRET,
    }


def odd_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "my notes %h")  # a space and a systemd specifier
    init_home(home)
    (home.root / "runner.yaml").write_text(
        "calendars:\n  - name: work\n    url: https://dav.example.com/cal/\n"
        "    username: me\n    password_env: CALDAV_PASSWORD\n",
        encoding="utf-8",
    )
    return home


def all_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_install_writes_a_unit_and_an_env_file_and_enables_nothing(
    tmp_path: Path, user: dict[str, str]
) -> None:
    home = odd_home(tmp_path)
    result = cli(home, "service", "install", "--platform", "linux", "--json", env=user)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    unit, env_file = Path(doc["unit"]), Path(doc["env_file"])
    assert unit.parent == Path(user["XDG_CONFIG_HOME"]) / "systemd" / "user"
    text = unit.read_text()
    assert "ExecStart=" in text and '"--home"' not in text
    assert '--home "' + str(home.root).replace("%", "%%") + '" watch' in text
    assert f"EnvironmentFile=-{env_file}" in text and "Restart=on-failure" in text
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "# CALDAV_PASSWORD=" in env_file.read_text()
    assert "# ANTHROPIC_API_KEY=" in env_file.read_text()
    assert doc["next"][1] == f"systemctl --user enable --now {doc['name']}"
    assert not list(Path(user["HOME"]).rglob("*.wants"))  # nothing enabled
    assert SECRET not in all_text(Path(user["HOME"])) + result.stdout + result.stderr


def test_reinstall_keeps_the_users_env_file(tmp_path: Path, user: dict[str, str]) -> None:
    home = odd_home(tmp_path)
    first = json.loads(
        cli(home, "service", "install", "--platform", "linux", "--json", env=user).stdout
    )
    env_file = Path(first["env_file"])
    env_file.write_text("ANTHROPIC_API_KEY=mine\n", encoding="utf-8")
    again = json.loads(
        cli(home, "service", "install", "--platform", "linux", "--json", env=user).stdout
    )
    assert again["unit"] == first["unit"] and again["kept"] == [str(env_file)]
    assert env_file.read_text() == "ANTHROPIC_API_KEY=mine\n"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_unit(tmp_path: Path, user: dict[str, str]) -> None:
    home = odd_home(tmp_path)
    doc = json.loads(
        cli(home, "service", "install", "--platform", "linux", "--json", env=user).stdout
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", doc["unit"]],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **user},
    )
    assert verify.returncode == 0, verify.stderr
    assert doc["name"] not in verify.stderr, verify.stderr  # no warning about our unit


def test_launchd_agent_sources_the_env_file_in_a_shell(
    tmp_path: Path, user: dict[str, str]
) -> None:
    home = odd_home(tmp_path)
    doc = json.loads(
        cli(home, "service", "install", "--platform", "macos", "--json", env=user).stdout
    )
    plist = plistlib.loads(Path(doc["unit"]).read_bytes())
    assert plist["Label"] == doc["name"] and plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    shell, flag, script = plist["ProgramArguments"]
    assert (shell, flag) == ("/bin/sh", "-c")
    # The wrapper really exports the file's variables to the runner it execs.
    Path(doc["env_file"]).write_text("RUNNER_PROBE=seen\n", encoding="utf-8")
    probe = script.split("exec ", 1)[0] + 'exec printf %s "$RUNNER_PROBE"'
    out = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout == "seen"
    assert plist["StandardErrorPath"] == doc["log"]
    assert SECRET not in all_text(Path(user["HOME"]))


def test_uninstall_and_status(tmp_path: Path, user: dict[str, str]) -> None:
    home = odd_home(tmp_path)
    cli(home, "service", "install", "--platform", "linux", env=user)
    before = json.loads(
        cli(home, "service", "status", "--platform", "linux", "--json", env=user).stdout
    )
    assert before["state"]["installed"] == "yes"
    assert before["log"] == f"journalctl --user -u {before['name']}"
    gone = json.loads(
        cli(home, "service", "uninstall", "--platform", "linux", "--json", env=user).stdout
    )
    assert gone["removed"] == [before["unit"]] and Path(gone["env_file"]).exists()
    after = json.loads(
        cli(home, "service", "status", "--platform", "linux", "--json", env=user).stdout
    )
    assert after["state"]["installed"] == "no"


def test_two_homes_get_two_services(tmp_path: Path, user: dict[str, str]) -> None:
    names = set()
    for name in ("a", "b"):
        home = Home(tmp_path / name / "notes")
        init_home(home)
        doc = json.loads(
            cli(home, "service", "install", "--platform", "linux", "--json", env=user).stdout
        )
        names.add(doc["name"])
    assert len(names) == 2


def test_a_dollar_in_the_home_is_not_expanded_by_systemd(
    tmp_path: Path, user: dict[str, str]
) -> None:
    # systemd substitutes ${VAR} (and a lone $VAR word) in ExecStart=; `$$` is a literal $.
    home = Home(tmp_path / "costs ${HOME} $USER")
    init_home(home)
    doc = json.loads(
        cli(home, "service", "install", "--platform", "linux", "--json", env=user).stdout
    )
    text = Path(doc["unit"]).read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert "costs $${HOME} $$USER" in exec_start and "costs ${HOME}" not in exec_start


def test_a_newline_in_the_home_is_refused(tmp_path: Path, user: dict[str, str]) -> None:
    home = Home(tmp_path / "two\nlines")
    init_home(home)
    result = cli(home, "service", "install", "--platform", "linux", env=user)
    assert result.returncode == 2 and "newline" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (Path(user["XDG_CONFIG_HOME"]) / "systemd").exists()
