"""A full disk (issue 13, defect 2): a home on a small tmpfs, filled so that only a
few KB are left, so that each of tick's writes in turn is the one that fails. The
command fails with a clear error; afterwards, with space freed, no log holds a torn
or half-written line, nothing stays `running`, and no occurrence completed twice.

Needs root to mount the tmpfs (CI runs as root); elsewhere the test is skipped and
says why.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner import keys
from runner.home import Home
from runner.init import init_home
from runner.logs import store as logs
from tests.conftest import cli
from tests.fakes import write_ics
from tests.test_compress_passes import SETTINGS_YAML, assert_whole, backlog
from tests.test_tick import event

SIZE = "384k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the disk, then give back `leave` bytes."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def all_lines(home: Home) -> list[dict[str, object]]:
    """Every record in live logs, archives and set-aside `.corrupt` files."""
    out: list[dict[str, object]] = []
    for path in sorted(home.logs.rglob("*.jsonl*")):
        raw = path.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{path}: torn last line"
        for line in raw.decode("utf-8").splitlines():
            if path.name.endswith(".corrupt"):
                try:
                    out.append(json.loads(line))  # a whole record set aside counts too
                except json.JSONDecodeError:
                    continue
            else:
                out.append(json.loads(line))  # a live or archived line must parse
    return out


# Levels chosen (by a sweep in 700-byte steps) to hit each write of a tick in turn:
# the occurrence task file, the "running" state, the log record, the "completed" state.
@pytest.mark.parametrize("leave", [0, 6000, 13000, 15000, 18000, 24000])
def test_tick_on_a_full_disk_keeps_exactly_once(small_disk: Path, leave: int) -> None:
    home = Home(small_disk / "home")
    init_home(home)
    now = datetime.now(UTC)
    long = "DESCRIPTION:" + "Long instructions. " * 150
    write_ics(home, "a.ics", event("a@x", now - timedelta(minutes=3), "A", long))
    write_ics(home, "b.ics", event("b@x", now - timedelta(minutes=2), "B", long))
    home.settings_file.write_text("compression:\n  keep_recent: 1\n  max_executions: 1\n")
    # A hand-written task in the occurrence's series: its runs make the series'
    # compressions (max_executions 1) archive whatever is older.
    (home.tasks / "note.yaml").write_text(f"instructions: x\nkey: {keys.series_key('a@x')}\n")
    assert cli(home, "run", "note").returncode == 0

    filler = fill(small_disk, leave)
    full = cli(home, "tick")
    assert "Traceback" not in full.stderr, full.stderr
    if full.returncode != 0:
        assert "No space left on device" in full.stderr, full.stderr
    filler.unlink()

    after = [
        cli(home, "run", "note"),  # a newer execution; its compression archives older ones
        cli(home, "list", "--json"),  # the next command: recovers what the full disk left
        cli(home, "tick", "--json"),
        cli(home, "list", "--json"),
    ]
    for result in after:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    rows = json.loads(after[-1].stdout)["tasks"]
    assert all(row["status"] != "running" for row in rows), rows
    by_task: dict[str, list[tuple[str, str]]] = {}
    seen: set[object] = set()
    for record in all_lines(home):
        if record.get("type") != "execution" or record["id"] in seen:
            continue  # an archived record may also still be live after a failed replace
        seen.add(record["id"])
        by_task.setdefault(str(record["task"]), []).append(
            (str(record["started"]), str(record["status"]))
        )
    for task, runs in by_task.items():
        if "/" not in task:
            continue
        statuses = [status for _, status in sorted(runs)]
        # Completed at most once, and nothing after it (no `interrupted`, no rerun).
        assert statuses.count("completed") <= 1, (task, statuses)
        assert "completed" not in statuses[:-1], (task, statuses)


def test_an_append_that_does_not_fit_leaves_no_half_line(small_disk: Path) -> None:
    from runner.fsutil import append_line

    log = small_disk / "log.jsonl"
    append_line(log, '{"type": "execution", "id": "1"}')
    before = log.read_bytes()
    filler = fill(small_disk, 1000)
    with pytest.raises(OSError):
        append_line(log, '{"type": "execution", "id": "2", "text": "' + "x" * 20000 + '"}')
    assert log.read_bytes() == before  # cut back to the last whole line
    filler.unlink()


@pytest.mark.parametrize("leave", [2_000, 30_000, 90_000, 200_000])
def test_a_full_disk_mid_compression_loses_and_doubles_nothing(
    small_disk: Path, leave: int
) -> None:
    home = Home(small_disk / "home")
    init_home(home)
    ids = backlog(home)
    home.settings_file.write_text(SETTINGS_YAML, encoding="utf-8")
    filler = fill(small_disk, leave)
    full = cli(home, "compress", "hello")
    assert "Traceback" not in full.stderr, full.stderr
    if full.returncode != 0:
        assert full.returncode == 1 and "hello" in full.stderr, full.stderr
    assert [str(r.id) for r in logs.read_all(home, "hello").executions] == ids
    filler.unlink()
    done = cli(home, "compress", "hello")
    assert done.returncode == 0, done.stderr
    assert_whole(home, ids)
    assert list(home.logs.glob(".hello.jsonl.*.tmp")) == []
