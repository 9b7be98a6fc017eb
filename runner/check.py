"""`runner check`: validate settings and every task file; one problem per file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.calendars.lines import clean
from runner.calendars.lines import where as file_where
from runner.errors import FileError, Problem, RunnerError
from runner.home import Home
from runner.keys import series_key
from runner.providers import provider_named
from runner.schedule.cache import CalendarFile, load_calendars
from runner.schedule.expand import file_occurrences
from runner.settings import Settings, load_settings
from runner.tasks.files import Task, parse_task
from runner.tasks.occurrence import load_reference, task_reference
from runner.tasks.trust import untrusted_tools_warning
from runner.tasks.walk import iter_task_paths
from runner.tools.mcpconfig import McpConfig, config_path, expand, load_mcp_config
from runner.yamlload import load_mapping

# The window `runner next` shows by default: check expands every file over it.
CHECK_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class CheckResult:
    checked: int
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()  # said, but not a failure

    @property
    def ok(self) -> bool:
        return not self.problems


def check_home(home: Home, now: datetime | None = None) -> CheckResult:
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked = 1
    settings: Settings | None = None
    try:
        settings = load_settings(home.settings_file)
    except FileError as exc:
        problems.append(Problem.from_error(exc))
    else:
        provider = provider_named(settings.brain.provider)
        if provider is not None and (missing := provider.missing()):
            problems.append(Problem(str(home.settings_file), None, missing))
    mcp: McpConfig | None = None
    try:
        mcp = load_mcp_config(home)
    except FileError as exc:
        problems.append(Problem.from_error(exc))
    checked += config_path(home).exists()
    used: set[str] = set()  # the MCP servers some task names
    for path in iter_task_paths(home, problems):
        checked += 1
        try:
            task = parse_task(home, path)
        except RunnerError as exc:
            problems.append(Problem.of(path, exc))
            continue
        if mcp is not None:
            problems.extend(_server_problems(path, task, mcp))
            used.update(task.tools.mcp)
        if settings is not None:
            problems.extend(_target_problems(task, settings))
        warning = untrusted_tools_warning(home, settings or Settings(), task)
        if warning is not None:
            warnings.append(Problem(str(path), _key_line(path, "tools"), warning))
        if task.tools.shell and (settings or Settings()).brain.provider != "claude-code":
            warnings.append(Problem(str(path), _key_line(path, "tools"), SHELL_ELSEWHERE))
    count, found = check_calendars(home, now)
    checked += count
    problems.extend(found)
    if mcp is not None:
        warnings.extend(_unset_variables(mcp, used))
    return CheckResult(checked, tuple(problems), tuple(warnings))


SHELL_ELSEWHERE = (
    "tools.shell is a grant of the claude-code brain only; "
    "with this brain.provider the task gets no shell"
)


def _key_line(path: Path, key: str) -> int | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.search(rf"(?m)^{key}\s*:", text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _server_problems(path: Path, task: Task, mcp: McpConfig) -> list[Problem]:
    """Each server a task's `tools: {mcp: [...]}` names must be in .mcp.json."""
    missing = [name for name in task.tools.mcp if name not in mcp.servers]
    if not missing:
        return []
    line = _mcp_line(path)
    where = mcp.path.name if mcp.path.exists() else f"{mcp.path.name} (there is none)"
    return [
        Problem(str(path), line, f"tools.mcp: MCP server '{name}' is not in {where}")
        for name in missing
    ]


def _mcp_line(path: Path) -> int | None:
    try:
        mapping = load_mapping(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, FileError):  # parse_task has just read it
        return None
    return mapping.child_lines.get("tools", {}).get("mcp", mapping.lines.get("tools"))


def _unset_variables(mcp: McpConfig, used: set[str]) -> list[Problem]:
    """A server a task names whose `${VAR}` is unset here: a warning, since the
    environment of `check` may not be the one runs get (cron, a login service)."""
    found: list[Problem] = []
    for name in sorted(used & set(mcp.servers)):
        try:
            expand(mcp.servers[name], mcp.path)
        except FileError as exc:
            found.append(Problem(str(exc.path), exc.line, f"{exc.problem} in this environment"))
    return found


def _target_problems(task: Task, settings: Settings) -> list[Problem]:
    """A task's `notify` naming a target runner.yaml does not define."""
    unknown = [n for n in task.delivery.notify or () if n not in settings.notify]
    if not unknown:
        return []
    text = task.path.read_text(encoding="utf-8")
    line = load_mapping(task.path, text).lines.get("notify")
    defined = ", ".join(sorted(settings.notify)) or "none defined"
    names = ", ".join(f"'{n}'" for n in unknown)
    return [Problem(str(task.path), line, f"notify: no target {names} in runner.yaml ({defined})")]


def check_calendars(home: Home, now: datetime | None = None) -> tuple[int, list[Problem]]:
    """For `runner check`: every calendar file, parsed and expanded over the window
    `runner next` shows (from `now`), so what expansion would refuse is found too."""
    try:
        settings = load_settings(home.settings_file)
    except RunnerError:  # reported by the settings check; check files with defaults
        settings = Settings()
    calendars = load_calendars(home, settings)
    start = now or datetime.now(UTC)
    problems = list(calendars.folder_problems)
    for cfile in calendars.files:
        problems.extend(_reference_problems(home, cfile))
        file_occurrences(cfile, calendars, start, start + CHECK_WINDOW)
        problems.extend(cfile.ensure_problems())
    problems.extend(_key_clashes(home, calendars.files))
    return len(calendars.files), problems


def _key_clashes(home: Home, files: tuple[CalendarFile, ...]) -> list[Problem]:
    """A scheduled task whose key another series has already: both would write the same
    occurrence files (tasks/<key>/<stamp>.yaml), so at a shared time only one fires."""
    owners: dict[str, Path] = {}
    for cfile in files:
        if not cfile.scheduled:
            for uid in cfile.parsed().masters:
                owners.setdefault(series_key(uid), cfile.path)
    found: list[Problem] = []
    for cfile in files:
        key = cfile.fixed_key if cfile.scheduled else None
        if key is None:
            continue
        other = owners.setdefault(key, cfile.path)
        if other == cfile.path:
            continue
        try:
            lines = load_mapping(cfile.path, cfile.path.read_text(encoding="utf-8")).lines
        except (OSError, UnicodeDecodeError, FileError):  # changed since: no line then
            lines = {}
        line = lines.get("key", lines.get("schedule"))
        where = other.relative_to(home.root) if other.is_relative_to(home.root) else other
        message = f"key '{key}' is also the series of {where}: give this schedule its own key"
        found.append(Problem(str(cfile.path), line, message))
    return found


def _reference_problems(home: Home, cfile: CalendarFile) -> list[Problem]:
    """An event saying `task: <id>` whose task is missing: tick would warn every time."""
    found: list[Problem] = []
    parsed = cfile.parsed()
    for uid, event in parsed.masters.items():
        ref_id = task_reference(str(event.get("DESCRIPTION") or ""))
        if ref_id is None:
            continue
        try:
            load_reference(home, ref_id)
        except FileError:
            continue  # a broken task file: the task check reports it
        except RunnerError as exc:
            block = parsed.blocks.get(uid)
            line = block.line("DESCRIPTION") if block is not None else None
            # The series key, not the UID: calendar text is not echoed raw to a terminal.
            where = f"event {series_key(uid)}"
            found.append(
                Problem(file_where(cfile.path), line, f"{where}: {clean(exc.message, 1000)}")
            )
    return found
