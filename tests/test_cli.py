from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from runner.home import Home

from .conftest import REPO, cli


def test_init_lays_out_a_home_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = cli(tmp_path / "ignored", "init", str(target))  # DIR wins over --home
    assert result.returncode == 0, result.stderr
    for name in ("tasks", "calendars", "logs", ".runner"):
        assert (target / name).is_dir()
    assert ".runner/" in (target / ".gitignore").read_text()
    assert not (tmp_path / "ignored").exists()
    (target / "runner.yaml").write_text("retries: 5\n")
    again = cli(tmp_path, "init", str(target))
    assert again.returncode == 0
    assert (target / "runner.yaml").read_text() == "retries: 5\n"
    assert "kept    runner.yaml (exists)" in again.stderr


def test_home_from_environment_and_option(tmp_path: Path) -> None:
    env_home = tmp_path / "envhome"
    cli(tmp_path, "init", str(env_home))
    env = {"RUNNER_HOME": str(env_home), "PATH": os.environ["PATH"]}
    run = [sys.executable, "-m", "runner"]
    by_env = subprocess.run([*run, "list", "--json"], capture_output=True, text=True, env=env)
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["home"] == str(env_home)
    other = tmp_path / "other"
    other.mkdir()
    by_option = subprocess.run(
        [*run, "--home", str(other), "list", "--json"], capture_output=True, text=True, env=env
    )
    assert json.loads(by_option.stdout)["home"] == str(other)  # --home wins


def test_a_missing_home_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for command in (["list"], ["run", "hello"], ["tick"], ["check"]):
        result = cli(typo, *command)
        assert result.returncode == 2, command
        assert f"no home at {typo}" in result.stderr
    assert not typo.exists()
    assert cli(typo, "init").returncode == 0 and (typo / "tasks").is_dir()


def test_run_streams_to_stdout_and_notices_to_stderr(home: Home) -> None:
    result = cli(home, "run", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[offline brain]")
    assert "brain: offline" in result.stderr and "brain:" not in result.stdout


def test_run_json_prints_only_the_record(home: Home) -> None:
    result = cli(home, "run", "hello", "--json")
    assert result.returncode == 0
    record = json.loads(result.stdout)
    assert record["type"] == "execution" and record["status"] == "completed"


def test_broken_task_is_reported_while_neighbour_runs(home: Home) -> None:
    (home.tasks / "broken.yaml").write_text("title: x\ninstructions: ok\nbogus_key: 1\n")
    broken_path = home.tasks / "broken.yaml"
    listed = cli(home, "list", "--json")
    assert listed.returncode == 0
    assert f"{broken_path}:3: unknown key 'bogus_key'" in listed.stderr
    assert [t["id"] for t in json.loads(listed.stdout)["tasks"]] == ["hello"]
    run_bad = cli(home, "run", "broken")
    assert run_bad.returncode == 2
    assert f"{broken_path}:3: unknown key 'bogus_key'" in run_bad.stderr
    assert "Traceback" not in run_bad.stderr
    run_good = cli(home, "run", "hello")
    assert run_good.returncode == 0
    checked = cli(home, "check")
    assert checked.returncode == 1
    assert f"{broken_path}:3: unknown key 'bogus_key'" in checked.stdout


def test_check_clean_home_exits_0_and_json(home: Home) -> None:
    result = cli(home, "check", "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["problems"] == []


def test_bad_settings_exit_2_for_run(home: Home) -> None:
    home.settings_file.write_text("brain:\n  provider: nonsense\n")
    result = cli(home, "run", "hello")
    assert result.returncode == 2
    assert f"{home.settings_file}:2:" in result.stderr


def test_unknown_task_exit_2(home: Home) -> None:
    result = cli(home, "run", "nope")
    assert result.returncode == 2 and "no such task: nope" in result.stderr
    bad_id = cli(home, "run", "../../etc/passwd")
    assert bad_id.returncode == 2 and "invalid task id" in bad_id.stderr


def test_list_and_log(home: Home) -> None:
    cli(home, "run", "hello")
    cli(home, "run", "hello")
    listed = json.loads(cli(home, "list", "--json").stdout)
    [row] = listed["tasks"]
    assert row["status"] == "completed" and row["attempts"] == 2
    assert row["tokens"]["output_tokens"] > 0
    assert listed["watch"] == {"running": False, "pid": None}
    human = cli(home, "list")
    assert "hello" in human.stdout and "completed" in human.stdout
    log = json.loads(cli(home, "log", "hello", "--json").stdout)
    assert log["key"] == "hello" and log["summary"] is None
    assert [e["status"] for e in log["executions"]] == ["completed", "completed"]
    text = cli(home, "log", "hello")
    assert text.returncode == 0 and "Prior executions in context: 1" in text.stdout
    assert cli(home, "log", "nothing-here").returncode == 2


def test_no_traceback_on_corrupt_log(home: Home) -> None:
    cli(home, "run", "hello")
    path = home.logs / "hello.jsonl"
    path.write_text("garbage\n" + path.read_text())
    result = cli(home, "log", "hello")
    assert result.returncode == 1
    assert f"{path}:1: not a JSON record" in result.stderr and "Traceback" not in result.stderr


def test_list_keeps_a_task_whose_log_is_corrupt(home: Home) -> None:
    cli(home, "run", "hello")
    path = home.logs / "hello.jsonl"
    path.write_text("garbage\n" + path.read_text())
    result = cli(home, "list", "--json")
    assert result.returncode == 0
    [row] = json.loads(result.stdout)["tasks"]
    assert row["id"] == "hello" and row["status"] == "completed"
    assert result.stderr.count(f"{path}:1: not a JSON record") == 1


def test_check_did_you_mean_and_github_annotations(home: Home) -> None:
    (home.tasks / "typo.yaml").write_text("title: T\ninstrucions: x\n", encoding="utf-8")
    (home.root / "runner.yaml").write_text("brain:\n  modle: x\n", encoding="utf-8")
    plain = cli(home, "check")
    assert plain.returncode == 1
    assert "typo.yaml:2: unknown key 'instrucions' (did you mean 'instructions'?)" in plain.stdout
    assert "runner.yaml:2: unknown key 'modle' in brain (did you mean 'model'?)" in plain.stdout
    github = subprocess.run(
        [sys.executable, "-m", "runner", "check", "--format", "github"],
        cwd=home.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert github.returncode == 1
    lines = github.stdout.splitlines()
    typo = "::error file=tasks/typo.yaml,line=2::unknown key 'instrucions' (did you mean"
    assert any(line.startswith(typo) for line in lines), github.stdout
    assert any(line.startswith("::error file=runner.yaml,line=2::") for line in lines)


def test_github_annotation_escapes_what_would_break_the_command() -> None:
    from runner.cli.commands.check import github_annotation
    from runner.errors import Problem

    line = github_annotation(Problem("/elsewhere/a,b:c.yaml", 3, "50% bad\nsecond"))
    assert line == "::error file=/elsewhere/a%2Cb%3Ac.yaml,line=3::50%25 bad%0Asecond"


def test_pre_commit_hook_runs_runner_check() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == "runner-check" and hook["entry"] == "runner check"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    pattern = re.compile(hook["files"])
    for name in ("runner.yaml", "tasks/a.yaml", "calendars/work/x.ics", ".mcp.json"):
        assert pattern.search(name), name
    assert not pattern.search("notes/a.md")
