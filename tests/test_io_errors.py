"""An I/O error at each durable write of a tick in turn (issue 13): the n-th write
of the process fails half-way with EIO (RUNNER_TEST_FAIL_WRITE, runner/testpause.py),
in a real `runner tick`. The error is said, never a traceback; afterwards nothing is
half-written, nothing stays `running`, no temp file is left, no record is lost, and
no occurrence completed twice. Unlike the tmpfs test beside it, this needs no root.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner import keys
from runner.home import Home
from runner.init import init_home
from tests.conftest import cli
from tests.fakes import write_ics
from tests.test_full_disk import all_lines
from tests.test_tick import event


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two due events, and a series with history whose compression runs in the tick."""
    home = Home(tmp_path_factory.mktemp("io") / "home")
    init_home(home)
    now = datetime.now(UTC)
    write_ics(home, "a.ics", event("a@x", now - timedelta(minutes=3), "A", "DESCRIPTION:Plan A."))
    write_ics(home, "b.ics", event("b@x", now - timedelta(minutes=2), "B", "DESCRIPTION:Plan B."))
    home.settings_file.write_text("compression:\n  keep_recent: 1\n  max_executions: 1\n")
    key = keys.series_key("a@x")
    (home.tasks / "note.yaml").write_text(f"instructions: x\nkey: {key}\noutput: out/note.md\n")
    for _ in range(2):
        assert cli(home, "run", "note").returncode == 0
    return home.root


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


def executions(home: Home) -> dict[str, list[str]]:
    by_task: dict[str, list[tuple[str, str]]] = {}
    seen: set[object] = set()
    for record in all_lines(home):
        if record.get("type") != "execution" or record["id"] in seen:
            continue  # an archived record may still be live after a failed replace
        seen.add(record["id"])
        by_task.setdefault(str(record["task"]), []).append(
            (str(record["started"]), str(record["status"]))
        )
    return {task: [status for _, status in sorted(runs)] for task, runs in by_task.items()}


def test_an_io_error_at_each_write_of_a_tick_loses_and_doubles_nothing(
    template: Path, tmp_path: Path
) -> None:
    before = executions(Home(template))
    hit: list[str] = []
    for n in range(1, 80):
        home = Home(tmp_path / f"n{n}")
        shutil.copytree(template, home.root, symlinks=True)
        faulty = cli(home, "tick", env={"RUNNER_TEST_FAIL_WRITE": str(n)})
        injected = [x for x in faulty.stderr.splitlines() if x.startswith("INJECTED ")]
        if not injected:
            assert faulty.returncode == 0, faulty.stderr
            break  # past the tick's last write: every write has had its turn
        hit.append(injected[0].split(" ", 2)[2])
        assert "Traceback" not in faulty.stderr, faulty.stderr
        if faulty.returncode != 0:
            assert "Input/output error" in faulty.stderr, (n, hit[-1], faulty.stderr)
        after = [cli(home, "list", "--json"), cli(home, "tick"), cli(home, "list", "--json")]
        for result in after:
            assert result.returncode == 0, (n, hit[-1], result.stderr)
            assert "Traceback" not in result.stderr
        rows = json.loads(after[-1].stdout)["tasks"]
        assert all(row["status"] != "running" for row in rows), (n, hit[-1], rows)
        assert leftovers(home.root) == [], (n, hit[-1])
        runs = executions(home)
        for task, statuses in before.items():  # no earlier record lost
            assert runs[task][: len(statuses)] == statuses, (n, hit[-1], task)
        for task, statuses in runs.items():
            if "/" in task:  # an occurrence: completed at most once, nothing after it
                assert statuses.count("completed") <= 1, (n, hit[-1], task, statuses)
                assert "completed" not in statuses[:-1], (n, hit[-1], task, statuses)
        shutil.rmtree(home.root)
    else:
        pytest.fail("a tick that never ends its writes")
    # Each kind of write had its turn: task files, the log, the archive, output, state.
    assert len(hit) >= 8, hit
    assert any(h.startswith("append ") and h.endswith(".jsonl") for h in hit), hit
    assert any(h.startswith("replace ") and h.endswith(".yaml") for h in hit), hit
