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


def test_kill_after_the_record_then_compression_does_not_run_it_twice(home: Home) -> None:
    """Issue 13, defect 1: SIGKILL after the record is appended, the record is then
    archived by a compression, and a later `list` + `tick` must see it there: the
    occurrence stays completed once, with no `interrupted` record and no second run."""
    from datetime import UTC, datetime, timedelta

    from runner import keys
    from tests.fakes import write_ics
    from tests.test_tick import event

    uid = "daily-crash@example.com"
    key = keys.series_key(uid)
    write_ics(home, "d.ics", event(uid, datetime.now(UTC) - timedelta(minutes=5), "Daily"))
    home.settings_file.write_text(
        "compression:\n  keep_recent: 1\n  max_executions: 100\n", encoding="utf-8"
    )
    (home.tasks / "other.yaml").write_text(f"instructions: note\nkey: {key}\n")

    kill_at(home, "executor-after-append", "tick")  # the occurrence: record, no state
    assert cli(home, "run", "other").returncode == 0  # a newer execution in the series
    assert cli(home, "compress", key).returncode == 0  # archives the occurrence's record
    assert cli(home, "list").returncode == 0  # recovery: must find the archived record
    again = cli(home, "tick", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["ran"] == 0

    listed = cli(home, "log", key, "--all", "--json")
    runs = [r for r in json.loads(listed.stdout)["executions"] if r["task"] != "other"]
    assert [(r["status"], r["error"]) for r in runs] == [("completed", None)]
    [occurrence_file] = (home.tasks / key).iterdir()
    assert "status: completed" in occurrence_file.read_text()
