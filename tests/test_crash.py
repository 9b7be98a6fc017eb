"""Crash tests: SIGKILL a real `runner run` at a step, then check the files."""

from __future__ import annotations

import json

from runner.home import Home

from .conftest import cli, kill_at


def all_records(home: Home, key: str) -> list[dict[str, object]]:
    path = home.logs / f"{key}.jsonl"
    raw = path.read_bytes() if path.exists() else b""
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def test_kill_mid_execution_then_next_command_recovers(home: Home) -> None:
    cli(home, "run", "hello")  # one earlier completed run
    kill_at(home, "executor-before-brain", "run", "hello")
    assert "status: running" in (home.tasks / "hello.yaml").read_text()
    listed = cli(home, "list", "--json")  # the next command that touches it
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["tasks"]
    assert row["status"] == "failed" and row["error"] == "interrupted"
    records = all_records(home, "hello")
    assert [(r["status"], r["error"]) for r in records] == [
        ("completed", None),
        ("failed", "interrupted"),
    ]
    # Recovery happens once, and the task runs again when asked.
    again = cli(home, "run", "hello", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["status"] == "completed"
    assert len(all_records(home, "hello")) == 3
    text = (home.tasks / "hello.yaml").read_text()
    assert "\ntitle: Hello\n" in text and "status: completed" in text


def test_kill_between_record_and_state_is_not_doubled(home: Home) -> None:
    kill_at(home, "executor-after-append", "run", "hello")
    records = all_records(home, "hello")
    assert [r["status"] for r in records] == ["completed"]
    result = cli(home, "run", "hello", "--json")  # recovers first, then runs again
    assert result.returncode == 0, result.stderr
    statuses = [r["status"] for r in all_records(home, "hello")]
    assert statuses == ["completed", "completed"]  # no spurious "interrupted" record
