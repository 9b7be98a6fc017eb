"""Shell completion through click: task ids, series keys and notification targets
from the home given by --home (or RUNNER_HOME), in a real bash where one exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.home import Home

from .conftest import cli


def complete(home: Home, words: list[str], env: dict[str, str] | None = None) -> list[str]:
    """What click's bash protocol offers for the last word of `runner WORDS`."""
    line = " ".join(["runner", *words])
    result = subprocess.run(
        [sys.executable, "-m", "runner"],
        env={
            **os.environ,
            **(env or {}),
            "_RUNNER_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words)),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return [item.split(",", 1)[1] for item in result.stdout.split() if item.startswith("plain,")]


def lay_out(home: Home) -> None:
    series = home.tasks / "standup-1a2b3c4d"
    series.mkdir()
    for stamp in ("20261130T080000Z", "20261201T080000Z"):
        (series / f"{stamp}.yaml").write_text("instructions: x\n", encoding="utf-8")
    (home.tasks / ".hidden.yaml").write_text("instructions: x\n", encoding="utf-8")
    (home.logs / "standup-1a2b3c4d.jsonl").write_text("", encoding="utf-8")
    (home.logs / "hello.jsonl").write_text("", encoding="utf-8")


def test_run_completes_task_ids_newest_occurrence_first(home: Home) -> None:
    lay_out(home)
    offered = complete(home, ["--home", str(home.root), "run", ""])
    assert offered == [
        "hello",
        "standup-1a2b3c4d/20261201T080000Z",
        "standup-1a2b3c4d/20261130T080000Z",
    ]
    assert complete(home, ["--home", str(home.root), "run", "st"])[0].startswith("standup-")


def test_log_and_compress_complete_keys_from_runner_home(home: Home) -> None:
    lay_out(home)
    env = {"RUNNER_HOME": str(home.root)}
    assert complete(home, ["compress", ""], env) == ["hello", "standup-1a2b3c4d"]
    assert complete(home, ["log", "standup"], env) == [
        "standup-1a2b3c4d",
        "standup-1a2b3c4d/20261130T080000Z",
        "standup-1a2b3c4d/20261201T080000Z",
    ]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(home: Home, shell: str) -> None:
    result = cli(home, "completion", shell)
    assert result.returncode == 0 and "_RUNNER_COMPLETE" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_the_bash_script_completes_in_a_real_bash(home: Home, tmp_path: Path) -> None:
    lay_out(home)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "runner"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m runner "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    script = (
        'eval "$(runner completion bash)"\n'
        'COMP_WORDS=(runner --home "$HOME_DIR" compress ""); COMP_CWORD=4\n'
        "_runner_completion runner\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME_DIR": str(home.root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.stdout.split() == ["hello", "standup-1a2b3c4d"], result.stderr


def test_notify_completes_target_names(home: Home) -> None:
    home.settings_file.write_text(
        "notify:\n  phone: {url_env: NTFY_URL}\n  desk: {url: 'json://127.0.0.1:9/'}\n",
        encoding="utf-8",
    )
    assert complete(home, ["--home", str(home.root), "notify", ""]) == ["desk", "phone"]


def test_file_names_that_are_no_task_ids_are_not_offered(home: Home) -> None:
    # A newline would split into two bogus candidates; a space into two words.
    for name in ("evil\nname", "sp ace", "$(touch pwned)"):
        (home.tasks / f"{name}.yaml").write_text("instructions: x\n", encoding="utf-8")
    offered = complete(home, ["--home", str(home.root), "run", ""])
    assert offered == ["hello"], offered
