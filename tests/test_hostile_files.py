"""Hostile files in a home: a clear `path:line: message`, never a traceback, and the
neighbours keep working (issue 13, defects 4 and 7)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from runner.home import Home

from .conftest import cli


def no_traceback(result: object) -> None:
    for stream in (getattr(result, "stdout", ""), getattr(result, "stderr", "")):
        assert "Traceback" not in stream, stream


@pytest.mark.parametrize(
    "text",
    [
        "title: x\ninstructions: hi\noccurrence: 2026-02-30\n",
        "title: x\ninstructions: hi\n# runner state\nstarted: 2026-13-01T00:00:00Z\n",
        "title: x\ninstructions: hi\ncreated: 9999-12-31T23:59:60.999999Z\n",
    ],
)
def test_a_date_that_does_not_exist_in_a_task_file(home: Home, text: str) -> None:
    bad = home.tasks / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    line = text.count("\n", 0, text.index(": 2") if ": 2" in text else text.index(": 9")) + 1

    checked = cli(home, "check")
    no_traceback(checked)
    assert checked.returncode == 1
    assert f"{bad}:{line}: " in checked.stdout and "date" in checked.stdout

    listed = cli(home, "list", "--json")  # the neighbour `hello` is still listed
    no_traceback(listed)
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)["tasks"]] == ["hello"]
    assert f"{bad}:{line}: " in listed.stderr

    ran = cli(home, "run", "hello")
    no_traceback(ran)
    assert ran.returncode == 0, ran.stderr

    own = cli(home, "run", "bad")  # the command's own target: exit 2, named
    no_traceback(own)
    assert own.returncode == 2 and f"{bad}:{line}: " in own.stderr


def test_a_date_that_does_not_exist_in_runner_yaml(home: Home) -> None:
    home.settings_file.write_text("grace: 1h\nall_day_at: 2026-02-30\n", encoding="utf-8")
    checked = cli(home, "check")
    no_traceback(checked)
    assert checked.returncode == 1 and f"{home.settings_file}:2: " in checked.stdout
    for args in (("run", "hello"), ("tick",), ("next",)):
        result = cli(home, *args)
        no_traceback(result)
        assert result.returncode == 2, (args, result.stderr)
        assert f"{home.settings_file}:2: " in result.stderr


# -- defect 7: entries in tasks/ that cannot be read ---------------------------------


def _drop_root_file_powers() -> None:
    """Root reads any directory: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from
    the bounding set before exec, so a root-run CLI meets permissions as a user does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_symlink_loop_dangling_link_and_unreadable_folder(home: Home) -> None:
    (home.tasks / "loop.yaml").symlink_to("loop.yaml")
    (home.tasks / "dangling.yaml").symlink_to("nowhere.yaml")
    (home.tasks / "dirloop").symlink_to(".")
    locked = home.tasks / "locked"
    locked.mkdir()
    (locked / "20261126T080000Z.yaml").write_text("instructions: x\n")
    locked.chmod(0)
    try:
        for args in (("list", "--json"), ("tick", "--json"), ("check",)):
            result = _cli_as_user(home, *args)
            no_traceback(result)
            warned = result.stdout + result.stderr if args[0] == "check" else result.stderr
            assert warned.count(str(home.tasks / "locked")) == 1, (args, warned)
            for name in ("loop.yaml", "dangling.yaml"):
                # tick reads a hand-written task only for its `schedule:`; list and
                # check load every one, and name each unreadable file once.
                expected = {0, 1} if args[0] == "tick" else {1}
                assert warned.count(str(home.tasks / name)) in expected, (args, name, warned)
            if args[0] == "check":
                assert result.returncode == 1
            else:
                assert result.returncode == 0, (args, warned)
            if args[0] == "list":
                assert [r["id"] for r in json.loads(result.stdout)["tasks"]] == ["hello"]
    finally:
        locked.chmod(0o755)


def _cli_as_user(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        preexec_fn=_drop_root_file_powers if os.geteuid() == 0 else None,
    )


def test_a_task_file_name_with_a_newline_or_escape_is_one_problem_line(home: Home) -> None:
    (home.tasks / "evil\nname\x1b[2J.yaml").write_text("title: no instructions\n", "utf-8")
    result = cli(home, "check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "\x1b" not in result.stdout, result.stdout
    assert lines[0].endswith("evil\\x0aname\\x1b[2J.yaml:1: missing required key 'instructions'")
    listing = cli(home, "list")  # the warning on stderr is one line too
    assert "\x1b" not in listing.stderr and "evil\\x0aname" in listing.stderr, listing.stderr
