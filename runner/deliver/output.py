"""`output:`: a run's final answer, also written to a file in the home.

The template's placeholders are filled for one run (`{date}` the occurrence's local
date, or today for a hand-run task; `{stamp}`, `{series}`, `{task}`), and the path
is checked twice: from its text when the task file loads (tasks/delivery.py), and
here against the disk, so a symlink cannot carry it out of the home or under
.git/, .runner/ or logs/. The write is atomic; a retried occurrence renders the same
path and replaces its own file.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from runner import keys
from runner.clock import local_zone
from runner.errors import RunnerError
from runner.fsutil import atomic_write
from runner.home import FORBIDDEN_TOP, Home
from runner.tasks.delivery import output_problem
from runner.tasks.files import Task
from runner.tools.paths import PathGuard, Refused


class OutputRefused(RunnerError):
    """An output path that would leave the home or enter a folder of the runner's."""


def _occurrence_date(occurrence: str) -> date:
    moment = datetime.fromisoformat(occurrence)
    if len(occurrence) <= 10:  # an all-day event: a date
        return moment.date()
    if moment.tzinfo is None:  # floating: local time already
        return moment.date()
    return moment.astimezone(local_zone()).date()


def render_output(task: Task, started: datetime) -> str | None:
    """The home-relative path this run writes, or None when the task has no `output`.

    `started` (aware) stands in for the occurrence of a hand-run task: today's date,
    and the run's start as the stamp.
    """
    template = task.delivery.output
    if template is None:
        return None
    if task.occurrence is not None:
        day = _occurrence_date(task.occurrence)
    else:
        day = started.astimezone(local_zone()).date()
    stamp = task.id.partition("/")[2] if task.is_occurrence else keys.stamp(started)
    values = {"date": day.isoformat(), "stamp": stamp, "series": task.key, "task": task.id}
    rendered = template
    for name, value in values.items():
        rendered = rendered.replace("{" + name + "}", value)
    problem = output_problem(rendered)  # the filled-in values are keys: still checked
    if problem is not None:
        raise OutputRefused(f"{task.id}: output {rendered!r} {problem}")
    return rendered


def output_file(home: Home, relative: str) -> Path:
    """The file for `relative`, resolved (symlinks followed) and checked by the write
    tool's own guard: inside the home, outside .git/, .runner/ and logs/."""
    try:
        checked = PathGuard(home.root, (), ("**",)).check(relative, writing=True)
    except Refused as exc:
        raise OutputRefused(f"output {exc}") from None
    if checked.path == home.root.resolve():
        raise OutputRefused(f"output {relative!r} names the home itself")
    top = checked.rel.split("/")[0]
    if top.casefold() in FORBIDDEN_TOP:  # a case-insensitive disk: Logs/ is logs/
        raise OutputRefused(f"output {relative!r} leads under {top}/, which is the runner's")
    if checked.path.is_dir():
        raise OutputRefused(f"output {relative!r} is a folder")
    return checked.path


def write_output(home: Home, relative: str, text: str) -> Path:
    """Write the answer to `relative` atomically; raise OutputRefused or OSError."""
    path = output_file(home, relative)
    atomic_write(path, text if text.endswith("\n") else text + "\n")
    return path
