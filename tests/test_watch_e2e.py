"""`runner watch` as a user runs it: a real subprocess on a tmp home, real files, real
signals. Waits poll the watch's JSON event lines (with timeouts as failure guards),
never fixed sleeps."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.home import Home
from runner.keys import series_key
from tests.caldav_servers import DavServer
from tests.conftest import cli
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.fakes import calendar_text, vevent

Event = dict[str, Any]


class WatchProcess:
    def __init__(self, home: Home, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "--home", str(home.root), "watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, kind: str, timeout: float = 10, **match: Any) -> Event:
        """The next event of `kind` whose fields match; fails after `timeout` seconds."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while True:
            left = (deadline - datetime.now(UTC)).total_seconds()
            try:
                event = self.events.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {kind} event {match} within {timeout} s") from None
            self.seen.append(event)
            if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event
            if event["event"] == "stopped":
                raise AssertionError(f"the watch stopped while waiting for {kind}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def watch(home: Home) -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def start(env: dict[str, str] | None = None) -> WatchProcess:
        process = WatchProcess(home, env)
        started.append(process)
        process.wait_for("started")
        return process

    yield start
    for process in started:
        process.kill()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_ics(uid: str, first: datetime, *more: datetime, description: str = "Say hi.") -> str:
    rdate = "RDATE:" + ",".join(stamp(m) for m in more) if more else ""
    return calendar_text(vevent(uid, first, description=description, duration="PT5M", extra=rdate))


def soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def log_records(home: Home, key: str) -> list[dict[str, Any]]:
    path = home.logs / f"{key}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def statuses(home: Home) -> list[str]:
    found = []
    for path in home.tasks.glob("*/*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("status:"):
                found.append(line.split(":", 1)[1].strip())
    return found


def test_watch_reacts_to_new_renamed_and_edited_files_and_stops_cleanly(
    home: Home, watch: Callable[..., WatchProcess]
) -> None:
    agent = home.calendars / "agent"
    agent.mkdir()
    w = watch()
    # One watch per home: a second exits at once, naming the first one's pid.
    second = cli(home, "watch", timeout=15)
    assert second.returncode == 1
    assert f"pid {w.proc.pid}" in second.stderr
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert listed["watch"] == {"running": True, "pid": w.proc.pid}

    # A new .ics due in a few seconds: the event runs and lands in its log.
    (agent / "new.ics").write_text(event_ics("new@e2e", soon(2)), encoding="utf-8")
    done = w.wait_for("finished", key=series_key("new@e2e"))
    assert done["status"] == "completed"
    assert [r["status"] for r in log_records(home, series_key("new@e2e"))] == ["completed"]

    # A rename-save (temp file, then rename over the target) is seen like a write.
    tmp = agent / ".renamed.ics.tmp"
    tmp.write_text(event_ics("renamed@e2e", soon(2)), encoding="utf-8")
    os.replace(tmp, agent / "renamed.ics")
    assert w.wait_for("finished", key=series_key("renamed@e2e"))["status"] == "completed"

    # An event pointing at a hand-written task takes its words from the task file;
    # an edit to that file is what the next occurrence runs with.
    brief = home.tasks / "brief.yaml"
    brief.write_text("title: Brief\ninstructions: Version one.\n", encoding="utf-8")
    first, second_at = soon(2), soon(6)
    text = event_ics("brief@e2e", first, second_at, description="task: brief")
    (agent / "brief.ics").write_text(text, encoding="utf-8")
    key = series_key("brief@e2e")
    w.wait_for("finished", key=key, task=f"{key}/{stamp(first)}")
    brief.write_text("title: Brief\ninstructions: Version two.\n", encoding="utf-8")
    w.wait_for("finished", key=key, task=f"{key}/{stamp(second_at)}")
    records = log_records(home, key)
    assert [r["instructions"] for r in records] == ["Version one.", "Version two."]
    assert "Prior executions in context: 1" in records[1]["response"]

    assert w.stop(signal.SIGTERM) == 0
    assert w.wait_for("stopped")["interrupted"] == []
    assert "running" not in statuses(home)
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert listed["watch"] == {"running": False, "pid": None}


def test_sigterm_interrupts_a_slow_run_and_exits_0(
    home: Home, watch: Callable[..., WatchProcess]
) -> None:
    home.settings_file.write_text("shutdown_grace: 1s\n", encoding="utf-8")
    (home.calendars / "agent").mkdir()
    with FakeAnthropic() as api:
        api.queue(Reply(delay=60))  # a model that takes its time
        w = watch(env=api.env())
        when = soon(2)
        path = home.calendars / "agent" / "slow.ics"
        path.write_text(event_ics("slow@e2e", when), encoding="utf-8")
        key = series_key("slow@e2e")
        w.wait_for("fired", key=key)
        assert w.stop(signal.SIGTERM) == 0
        stopped = w.wait_for("stopped")
    assert stopped["interrupted"] == [key]
    # Recorded as an interrupted failure (so it is retried), nothing left running.
    records = log_records(home, key)
    assert [(r["status"], r["error"]) for r in records] == [("failed", "interrupted")]
    task = (home.tasks / key / f"{stamp(when)}.yaml").read_text(encoding="utf-8")
    assert "status: failed" in task and "error: interrupted" in task
    assert "running" not in statuses(home)


def test_caldav_events_are_synced_in_the_background_and_fired(
    home: Home, watch: Callable[..., WatchProcess], radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    when = soon(4)
    radicale.put(url, "dav.ics", event_ics("dav@e2e", when))
    home.settings_file.write_text(
        f"calendars:\n  - name: agent\n    url: {url}\n    username: user\nsync_every: 1h\n",
        encoding="utf-8",
    )
    w = watch()
    key = series_key("dav@e2e")
    sync = w.wait_for("sync")
    assert sync["ok"] and sync["changes"] == 1
    done = w.wait_for("finished", key=key, task=f"{key}/{stamp(when)}")
    assert done["status"] == "completed" and done["calendar"] == "agent"
    assert w.stop() == 0


def test_a_series_that_cannot_start_is_not_retried_in_a_busy_loop(
    home: Home, watch: Callable[..., WatchProcess]
) -> None:
    # A file where the series folder belongs (as a full disk or a read-only folder
    # would): the run fails before anything is recorded. The loop reports it and tries
    # again at its next plan, not hundreds of times a second.
    agent = home.calendars / "agent"
    agent.mkdir()
    blocker = home.tasks / series_key("blocked@e2e")
    blocker.write_text("in the way\n", encoding="utf-8")
    w = watch()
    (agent / "blocked.ics").write_text(event_ics("blocked@e2e", soon(0)), encoding="utf-8")
    w.wait_for("error", key=series_key("blocked@e2e"))
    # Meanwhile another series runs, and its due time is a new plan (a new try).
    (agent / "other.ics").write_text(event_ics("other@e2e", soon(1)), encoding="utf-8")
    w.wait_for("finished", key=series_key("other@e2e"))
    blocker.unlink()
    # Any new plan (here: a new file) tries the blocked series again.
    (agent / "later.ics").write_text(event_ics("later@e2e", soon(60)), encoding="utf-8")
    assert w.wait_for("finished", key=series_key("blocked@e2e"))["status"] == "completed"
    errors = [e for e in w.seen if e["event"] == "error"]
    assert 1 <= len(errors) <= 5
    assert w.stop() == 0


def test_a_notice_from_the_domain_reaches_watch_json(
    home: Home, watch: Callable[..., WatchProcess]
) -> None:
    """A torn log tail set aside during a run is a `notice` event on the JSON stream."""
    agent = home.calendars / "agent"
    agent.mkdir()
    key = series_key("torn")
    home.logs.mkdir(parents=True, exist_ok=True)
    (home.logs / f"{key}.jsonl").write_text('{"type": "execution", "id": "x", "sta')
    w = watch()
    (agent / "torn.ics").write_text(event_ics("torn", soon(2)))
    notice = w.wait_for("notice", timeout=20)
    assert "torn last line" in notice["message"] and notice["level"] == "warning"
    assert notice["version"] == 1 and "time" in notice
    w.wait_for("finished", timeout=20, status="completed")
    assert w.stop() == 0
