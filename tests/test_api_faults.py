"""An API that lies: a garbage body, a stream cut before its end (issue 13, defects 4
and 5). The real SDK in a real `runner run`, against tests/fake_anthropic.py."""

from __future__ import annotations

import json

import pytest

from runner.home import Home
from tests.conftest import cli
from tests.fake_anthropic import FakeAnthropic, Reply


def configure(home: Home) -> None:
    home.settings_file.write_text(
        "brain:\n  provider: anthropic\n  timeout: 10s\n  max_retries: 0\nretries: 2\n",
        encoding="utf-8",
    )


def records(home: Home) -> list[dict[str, object]]:
    path = home.logs / "hello.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>502 Bad Gateway</html>", "text/html"),
        (b"\x00\xff garbage {{{", "application/json"),
        (b"event: message_start\ndata: {not json\n\n", "text/event-stream"),
        (b'{"type": "message"}', "application/json"),
    ],
)
def test_a_garbage_body_is_a_clear_failed_run(
    home: Home, fake_anthropic: FakeAnthropic, body: bytes, content_type: str
) -> None:
    configure(home)
    fake_anthropic.queue(Reply(raw_body=body, raw_content_type=content_type))
    result = cli(home, "run", "hello", env=fake_anthropic.env())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    [record] = records(home)
    assert record["status"] == "failed" and record.get("retryable", True) is True
    assert "reply" in str(record["error"]) or "answer" in str(record["error"])
    assert "status: failed" in (home.tasks / "hello.yaml").read_text()


def test_a_stream_cut_before_message_stop_is_a_retryable_failure(
    home: Home, fake_anthropic: FakeAnthropic
) -> None:
    configure(home)
    fake_anthropic.queue(Reply(text="The first half of a long answer", cut_after=1))
    result = cli(home, "run", "hello", "--json", env=fake_anthropic.env())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    [record] = records(home)
    assert record["status"] == "failed", record
    assert "broke off" in str(record["error"])
    assert record.get("retryable", True) is True  # tick and watch will try again
    assert "status: failed" in (home.tasks / "hello.yaml").read_text()
