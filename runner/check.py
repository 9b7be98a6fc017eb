"""`runner check`: validate settings and every task file; one problem per file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import FileError, RunnerError
from .home import Home
from .settings import load_settings
from .tasks import iter_task_paths, parse_task


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"

    @classmethod
    def from_error(cls, exc: FileError) -> Problem:
        return cls(str(exc.path), exc.line, exc.problem)

    @classmethod
    def of(cls, path: Path, exc: RunnerError) -> Problem:
        """The problem a file at `path` raised: its own line when it names one."""
        if isinstance(exc, FileError):
            return cls.from_error(exc)
        return cls(str(path), None, exc.message)


@dataclass(frozen=True)
class CheckResult:
    checked: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# Other concerns (calendars) register their own checks here.
EXTRA_CHECKS: list[Callable[[Home], tuple[int, list[Problem]]]] = []


def _calendar_files(home: Home) -> tuple[int, list[Problem]]:
    from .calendars.reader import check_calendars  # lazy: reader imports this module

    return check_calendars(home)


EXTRA_CHECKS.append(_calendar_files)


def check_home(home: Home) -> CheckResult:
    problems: list[Problem] = []
    checked = 1
    try:
        load_settings(home.settings_file)
    except FileError as exc:
        problems.append(Problem.from_error(exc))
    for path in iter_task_paths(home):
        checked += 1
        try:
            parse_task(home, path)
        except RunnerError as exc:
            problems.append(Problem.of(path, exc))
    for extra in EXTRA_CHECKS:
        count, found = extra(home)
        checked += count
        problems.extend(found)
    return CheckResult(checked, tuple(problems))
