from __future__ import annotations

import json
from dataclasses import replace

import pytest

from runner.errors import LogCorruptError
from runner.events import Event, Notice, notices_to
from runner.home import Home
from runner.logs import store as logs


def rec(n: int, **extra: object) -> dict[str, object]:
    return {"type": "execution", "id": f"id{n}", "task": "t", "status": "completed", **extra}


def test_append_and_read_whole_lines(home: Home) -> None:
    for n in range(3):
        logs.append_record(home, "k", rec(n, response="line\nbreak ✓"))
    raw = logs.log_path(home, "k").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 3
    for line in raw.decode().splitlines():
        json.loads(line)
    contents = logs.read_log(home, "k")
    assert [r.id for r in contents.executions] == ["id0", "id1", "id2"]
    assert contents.summary is None


def test_torn_tail_is_moved_aside_before_append(home: Home) -> None:
    logs.append_record(home, "k", rec(1))
    path = logs.log_path(home, "k")
    with open(path, "ab") as handle:
        handle.write(b'{"type": "execution", "id": "torn", "sta')
    # Readers skip the torn tail.
    heard: list[Event] = []
    with notices_to(heard.append):
        assert [r.id for r in logs.read_log(home, "k").executions] == ["id1"]
    assert heard and all(isinstance(n, Notice) for n in heard)
    assert "torn last line" in str(heard[0].to_json()["message"])
    logs.append_record(home, "k", rec(2))
    lines = path.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["id1", "id2"]
    corrupt = path.with_name("k.jsonl.corrupt").read_text()
    assert corrupt == '{"type": "execution", "id": "torn", "sta\n'


def test_torn_only_line(home: Home) -> None:
    path = logs.log_path(home, "k")
    path.write_bytes(b'{"partial')
    logs.append_record(home, "k", rec(1))
    assert [r.id for r in logs.read_log(home, "k").executions] == ["id1"]


def test_bad_line_in_the_middle_fails_loudly(home: Home) -> None:
    path = logs.log_path(home, "k")
    path.write_text(json.dumps(rec(1)) + "\nnot json\n" + json.dumps(rec(2)) + "\n")
    with pytest.raises(LogCorruptError) as info:
        logs.read_log(home, "k")
    assert info.value.line == 2 and str(path) in str(info.value)


def test_summary_header_and_usage_totals(home: Home) -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100}
    logs.append_record(
        home, "k", {"type": "summary", "id": "s", "covers": 4, "usage": usage, "text": "sum"}
    )
    logs.append_record(home, "k", rec(1, usage={"input_tokens": 1, "output_tokens": 2}))
    contents = logs.read_log(home, "k")
    assert contents.summary is not None and contents.covers == 4
    assert contents.usage_totals() == {
        "input_tokens": 11,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
    }


def test_read_all_dedupes_archive_by_id(home: Home) -> None:
    archive = logs.archive_path(home, "k")
    archive.parent.mkdir(parents=True)
    lines = [rec(1), rec(2), rec(2), rec(3)]  # id2 twice: a crash mid-compression
    archive.write_text("".join(json.dumps(r) + "\n" for r in lines))
    logs.append_record(home, "k", {"type": "summary", "id": "s", "covers": 3, "text": "x"})
    logs.append_record(home, "k", rec(3))  # also still live after a crash
    logs.append_record(home, "k", rec(4))
    merged = logs.read_all(home, "k")
    assert [r.id for r in merged.executions] == ["id1", "id2", "id3", "id4"]


def test_keys_are_checked(home: Home) -> None:
    from runner.errors import UsageError

    with pytest.raises(UsageError):
        logs.log_path(home, "../escape")


def test_a_record_read_and_written_back_is_the_same_json() -> None:
    """Key order, unknown fields and odd values survive a round trip byte for byte."""
    from runner.logs.records import ExecutionRecord, SummaryRecord

    line = (
        '{"type": "execution", "id": "a1", "later_field": {"x": [1, 2]}, "task": "t", '
        '"status": "failed", "usage": {"input_tokens": 3}, "error": "boom", '
        '"retryable": false, "response": null}'
    )
    record = ExecutionRecord.from_json(json.loads(line))
    assert record.retryable is False and not record.may_retry and record.usage.input_tokens == 3
    assert logs.record_line(record) == line
    changed = replace(record, error="other")
    assert json.loads(logs.record_line(changed))["error"] == "other"
    assert list(json.loads(logs.record_line(changed))) == list(json.loads(line))
    summary = '{"type": "summary", "id": "s", "covers": "4", "text": "t", "extra": 1}'
    assert logs.record_line(SummaryRecord.from_json(json.loads(summary))) == summary


def test_a_new_record_writes_its_fields_in_order_and_optional_ones_only_when_set(
    home: Home,
) -> None:
    from runner.brain.protocol import BrainReply, Usage
    from runner.logs.records import ExecutionRecord
    from runner.tasks.files import load_task

    task = load_task(home, "hello")
    done = ExecutionRecord.of_run(
        task,
        started="s",
        finished="f",
        status="completed",
        model="m",
        reply=BrainReply("hi", "m", Usage(1, 2)),
    )
    keys = list(done.to_json())
    assert keys == [
        "type",
        "id",
        "task",
        "session_id",
        "occurrence",
        "started",
        "finished",
        "status",
        "model",
        "instructions",
        "response",
        "stop_reason",
        "usage",
        "error",
        "steps",
        "turns",
    ]
    final = ExecutionRecord.of_run(
        task, started="s", finished="f", status="failed", model="m", retryable=False
    )
    assert list(final.to_json())[-3:] == ["retryable", "steps", "turns"]
    assert final.to_json()["retryable"] is False
    assert ExecutionRecord.from_json(done.to_json()) == done
