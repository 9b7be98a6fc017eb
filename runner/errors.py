"""The project's own exceptions. Each carries the exit code the CLI maps it to.

Exit codes (SPEC, "Command line"): 0 success; 1 the work failed; 2 bad usage or the
command's own target cannot be loaded.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class RunnerError(Exception):
    """Base class: a message for the user and an exit code; never a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(RunnerError):
    """Bad usage: an unknown task, an invalid key, a bad option."""

    exit_code = 2


class FileError(RunnerError):
    """A file that cannot be loaded, reported as `path:line: message`."""

    exit_code = 2

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


class TaskFileError(FileError):
    """A task YAML file that does not load."""


class SettingsError(FileError):
    """runner.yaml does not load."""


class CalendarFileError(FileError):
    """A calendar .ics file that does not parse."""


class LogCorruptError(FileError):
    """A bad line in the middle of a JSONL log: stop rather than guess."""

    exit_code = 1


class WorkFailed(RunnerError):
    """The work ran and failed (a task failed, check found problems, a sync failed)."""

    exit_code = 1


class AlreadyReported(WorkFailed):
    """The work failed and the command has shown how: only the exit code is left."""

    def __init__(self) -> None:
        super().__init__("")


class BrainError(RunnerError):
    """A brain call failed. `retryable` is False for authentication and bad requests."""

    exit_code = 1

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class LockBusy(RunnerError):
    """Another process holds a lock we will not wait for."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        # A file name can hold a newline or an escape sequence: one line, nothing run.
        path = printable(self.path)
        where = f"{path}:{self.line}" if self.line is not None else path
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


def printable(text: str) -> str:
    """`text` with control and format characters (and line separators) escaped."""
    out: list[str] = []
    for char in text:
        if unicodedata.category(char)[0] == "C" or char in "\u2028\u2029":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean 'instructions'?)` when a known name is close, else ``."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""
