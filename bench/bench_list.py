"""`runner list` on a home of 1,000 tasks vs `python -c "import anthropic"`.

Target: list at most 0.25x of the bare SDK import, and `list` imports neither
anthropic nor caldav.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, alternate, machine, median
from runner.home import Home
from runner.init import init_home
from runner.keys import series_key, session_id
from runner.logs import store as logs
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus

SERIES = 50
PER_SERIES = 20


def build_home(root: Path) -> Home:
    if root.exists():
        shutil.rmtree(root)
    home = Home(root)
    init_home(home)
    for s in range(SERIES):
        key = series_key(f"bench-series-{s}@example.com")
        folder = home.tasks / key
        folder.mkdir(parents=True)
        for n in range(PER_SERIES):
            stamp = f"202611{(n % 28) + 1:02d}T{(n % 24):02d}0000Z"
            text = tasks.new_task_text(
                {
                    "title": f"Series {s}",
                    "instructions": f"Do the thing number {n}.\nWith a second line.",
                    "source": "local",
                    "calendar": "bench",
                    "caldav_uid": f"bench-series-{s}@example.com",
                    "occurrence": f"2026-11-{(n % 28) + 1:02d}T{(n % 24):02d}:00:00+00:00",
                    "recurrence_id": key,
                },
                tasks.TaskState(
                    status=TaskStatus.COMPLETED,
                    attempts=1,
                    session_id=session_id(key),
                    created="2026-11-26T08:00:00.000812Z",
                    started="2026-11-26T08:00:00.004113Z",
                    finished="2026-11-26T08:00:04.502113Z",
                ),
            )
            (folder / f"{stamp}.yaml").write_text(text)
            logs.append_record(
                home,
                key,
                {
                    "type": "execution",
                    "id": f"{s}-{n}",
                    "task": f"{key}/{stamp}",
                    "status": "completed",
                    "response": "ok " * 200,
                    "usage": {"input_tokens": 100, "output_tokens": 50},
                },
            )
    return home


def imported_modules(home: Home) -> dict[str, bool]:
    probe = (
        "import sys\n"
        "from runner.cli.main import main\n"
        f"sys.argv = ['runner', '--home', {str(home.root)!r}, 'list', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(repr({m: m in sys.modules for m in ('anthropic', 'caldav')}))\n"
    )
    result = subprocess.run([PY, "-c", probe], capture_output=True, text=True, check=True)
    assert len(json.loads(result.stdout)["tasks"]) == SERIES * PER_SERIES + 1
    return dict(eval(result.stderr.strip().splitlines()[-1]))


def main() -> None:
    home = build_home(OUT / "list-home")
    runner_cmd = [PY, "-m", "runner", "--home", str(home.root), "list"]
    times = alternate(
        {"runner list": runner_cmd, "import anthropic": [PY, "-c", "import anthropic"]}, 7
    )
    lst, sdk = median(times["runner list"]), median(times["import anthropic"])
    print(f"machine: {machine()}")
    print(f"runner list, {SERIES * PER_SERIES + 1} tasks: median {lst * 1000:.0f} ms")
    print(f"python -c 'import anthropic':  median {sdk * 1000:.0f} ms")
    print(f"ratio: {lst / sdk:.2f}x (target <= 0.25x)")
    print(f"modules imported by list: {imported_modules(home)} (target: both False)")


if __name__ == "__main__":
    main()
