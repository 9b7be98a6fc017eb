"""The outbox against a hostile world: files put in `.runner/outbox/` by someone
else (a folder, a FIFO, a symlink to /dev/zero, a huge file), a claim whose pid was
reused by a live process. The real `runner tick` in a subprocess, the real Apprise
library, a local receiver."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runner.deliver import outbox
from runner.deliver.message import Report
from runner.home import Home
from runner.tasks.delivery import Delivery
from tests.conftest import cli
from tests.receiver import Receiver


def _targets(home: Home, receiver: Receiver) -> None:
    home.settings_file.write_text(
        f"notify:\n  phone: {{url: '{receiver.url()}', timeout: 5s}}\nnotify_default: [phone]\n",
        encoding="utf-8",
    )


def _entry(home: Home, name: str) -> Path:
    report = Report("plan", "Daily plan", "completed", None, "the answer")
    outbox.put(home, name, report, Delivery(notify=("phone",), notify_on=("completed",)))
    return outbox.outbox(home) / f"{name}.json"


def _start_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def test_strange_files_in_the_outbox_never_stop_or_hang_a_tick(
    home: Home, receiver: Receiver
) -> None:
    _targets(home, receiver)
    folder = outbox.outbox(home)
    _entry(home, "good")
    (folder / "dir.json").mkdir()
    (folder / "dir.json" / "inside").write_text("x")
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "passwd.json").symlink_to("/etc/passwd")
    with open(folder / "huge.json", "wb") as huge:  # sparse: 2 GB of nothing
        huge.truncate(2 * 1024**3)
    ticked = cli(home, "tick", timeout=60)
    assert ticked.returncode == 0, ticked.stderr
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert "Traceback" not in ticked.stderr
    assert "huge.json" in ticked.stderr  # a file too big to be an entry: dropped, said
    assert not (folder / "huge.json").exists()
    # What is not a regular file is not ours: left where it is, untouched.
    assert (folder / "dir.json" / "inside").exists()
    assert os.path.exists("/etc/passwd")
    again = cli(home, "tick", timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(receiver.requests) == 1


def test_a_claim_whose_pid_now_belongs_to_another_process_is_taken_back(
    home: Home, receiver: Receiver
) -> None:
    _targets(home, receiver)
    folder = outbox.outbox(home)
    alive = os.getppid()  # a live process, but not the one that claimed the entry:
    reused = f"r1.json.{alive}.{_start_of(alive) + 1}.sending"  # it started later
    os.rename(_entry(home, "r1"), folder / reused)
    held = f"h1.json.{alive}.{_start_of(alive)}.sending"  # the claimant itself, alive
    os.rename(_entry(home, "h1"), folder / held)
    ticked = cli(home, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert len(receiver.wait_for(1)) == 1
    assert sorted(os.listdir(folder)) == [held]


def test_a_claim_names_its_claimant_with_its_start_time() -> None:
    """So that a pid reused after a crash does not pass for the claimant."""
    assert outbox.claimant() == f"{os.getpid()}.{_start_of(os.getpid())}"


def test_an_entry_with_wrong_types_is_dropped_not_a_crash(home: Home, receiver: Receiver) -> None:
    _targets(home, receiver)
    folder = outbox.outbox(home)
    _entry(home, "good")
    evil: dict[str, dict[str, Any]] = {
        "title-int": {"report": {"task_id": "p", "title": 123, "status": "completed"}},
        "text-list": {
            "report": {"task_id": "p", "title": "T", "status": "completed", "text": ["a"]}
        },
        "attempts-str": {
            "report": {"task_id": "p", "title": "T", "status": "completed", "attempts": "x"}
        },
        "notify-str": {
            "report": {"task_id": "p", "title": "T", "status": "completed"},
            "delivery": {"notify": "phone", "notify_on": ["completed"]},
        },
        "sends-str": {
            "report": {"task_id": "p", "title": "T", "status": "completed"},
            "sends": "1",
        },
    }
    for name, body in evil.items():
        full = {"version": 1, "delivery": {"notify": ["phone"], "notify_on": ["completed"]}}
        (folder / f"{name}.json").write_text(json.dumps({**full, **body}), encoding="utf-8")
    ticked = cli(home, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert "Traceback" not in ticked.stderr
    for name in evil:
        assert name in ticked.stderr  # each dropped, by name
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "Daily plan: completed"
    assert os.listdir(folder) == []
    assert len(receiver.requests) == 1


def test_a_temp_file_left_by_a_write_killed_midway_is_cleared_once_stale(
    home: Home, receiver: Receiver
) -> None:
    from runner.clock import SystemClock
    from runner.run.delivery import flush_outbox
    from runner.settings import Settings

    folder = outbox.outbox(home)
    folder.mkdir(parents=True)
    stale, fresh = folder / ".e1.json.abc123.tmp", folder / ".e2.json.def456.tmp"
    stale.write_text('{"half": ')
    fresh.write_text('{"being written')  # another process may be writing it right now
    hour_ago = time.time() - 3700
    os.utime(stale, (hour_ago, hour_ago))
    flush_outbox(home, Settings(), SystemClock(), lambda m: None)
    assert sorted(os.listdir(folder)) == [fresh.name]
