"""runner.yaml: every setting has a default; unknown keys are an error (path:line).

Each setting is declared once, below, as a field made with `setting(kind, help,
default)`: its name, its type (how the YAML value is checked and parsed), its default
and its help. `load_settings` validates from these declarations, `runner init` writes
its template from them (`settings_template`), and `setting_fields()` walks them with
their kinds and help (for a JSON Schema, for the docs). Adding a setting is one line
in its dataclass; the machinery is in runner/settings_fields.py.

Secrets never live here: a CalDAV password is named by `password_env` or fetched by
`password_cmd` at the moment it is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.delivery_settings import (
    Heartbeat,
    HeartbeatSettings,
    TargetNames,
    Targets,
    TargetSettings,
    check_target_names,
)
from runner.errors import SettingsError
from runner.providers import AUTO, auto_help, provider_names
from runner.settings_fields import (
    Checker,
    Choice,
    Duration,
    Flag,
    Integer,
    ListOf,
    SettingField,
    Table,
    Text,
    TimeOfDay,
    Where,
    parse_duration,
    parse_table,
    setting,
    template,
)
from runner.settings_fields import setting_fields as _fields
from runner.yamlload import load_mapping

__all__ = [
    "DEFAULT_MODEL",
    "BrainSettings",
    "CalendarSettings",
    "CatchUp",
    "CompressionSettings",
    "SettingField",
    "Settings",
    "load_settings",
    "parse_duration",
    "setting_fields",
    "settings_template",
]

DEFAULT_MODEL = "claude-sonnet-5-5"


class CatchUp(StrEnum):
    """Which occurrences missed while nothing ran still run (SPEC, "Scheduling rules")."""

    LATEST = "latest"
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class BrainSettings:
    provider: str = setting(Choice((AUTO, *provider_names())), auto_help(), AUTO, shown=True)
    model: str = setting(Text(), "for every task without its own", DEFAULT_MODEL)
    max_tokens: int = setting(Integer(1), "the longest answer", 4096)
    timeout: float = setting(Duration(positive=True), "the longest wait for more", 120.0)
    # The SDK's own retries within one attempt.
    max_retries: int = setting(Integer(0), "the SDK's retries in one attempt", 2)
    system: str | None = setting(
        Text(), "a system prompt for every task without its own", None, example='"You are ..."'
    )
    max_turns: int = setting(Integer(1), "model round trips in one run with tools", 20)
    max_run_tokens: int | None = setting(
        Integer(1, nullable=True),
        "tokens one run may use (default: no limit)",
        None,
    )
    daily_tokens: int | None = setting(
        Integer(1, nullable=True), "tokens the whole home may use per day (default: no limit)", None
    )


def _one_password_source(c: Checker, item: dict[str, Any], where: str, at: Where) -> None:
    if item.get("password_env") and item.get("password_cmd"):
        raise c.fail(at.line, f"{where}: give password_env or password_cmd, not both")


@dataclass(frozen=True)
class CalendarSettings:
    name: str = setting(
        Text(pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")),
        "its folder: calendars/<name>/",
        example="agent",
    )
    url: str | None = setting(
        Text(nullable=True, no_password=True),
        "CalDAV",
        None,
        example="https://dav.example.com/calendars/me/agent/",
    )
    username: str | None = setting(Text(nullable=True), "", None, example="me")
    password_env: str | None = setting(
        Text(nullable=True), "or password_cmd", None, example="CALDAV_PASSWORD"
    )
    password_cmd: str | None = setting(Text(nullable=True), "", None, example='"pass show caldav"')
    trusted: bool = setting(Flag(), "its events' own text may use tools", False)

    @property
    def is_caldav(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class CompressionSettings:
    max_tokens: int = setting(Integer(1), "compress a log past this size", 50000)
    max_executions: int = setting(Integer(1), "or past this many runs", 20)
    keep_recent: int = setting(Integer(1), "runs kept whole", 5)


@dataclass(frozen=True)
class Settings:
    brain: BrainSettings = setting(Table(BrainSettings), "", factory=BrainSettings)
    # None: every folder under calendars/ is a local calendar.
    calendars: tuple[CalendarSettings, ...] | None = setting(
        ListOf(
            CalendarSettings,
            "calendars must be a list of {name, url, ...}",
            unique="name",
            unique_message="calendar name {value!r} is used twice",
            check=_one_password_source,
        ),
        "default: every folder under calendars/ is a local calendar",
        None,
    )
    sync_every: float = setting(Duration(positive=True), "", 300.0)
    catch_up: CatchUp = setting(
        Choice(tuple(CatchUp), CatchUp), "occurrences missed while off", CatchUp.LATEST
    )
    grace: float = setting(Duration(), "older missed occurrences are skipped", 12 * 3600.0)
    all_day_at: time = setting(TimeOfDay(), "local time at which all-day events fire", time(9, 0))
    retries: int = setting(Integer(0), "", 2)
    workers: int = setting(Integer(1), "", 2)
    shutdown_grace: float = setting(Duration(), "", 10.0)
    compression: CompressionSettings = setting(
        Table(CompressionSettings), "", factory=CompressionSettings
    )
    # Delivery (runner/delivery_settings.py): notification targets by name, the
    # targets of tasks without their own `notify:`, and the watch's heartbeat.
    notify: dict[str, TargetSettings] = setting(
        Targets(), "targets, e.g. phone: {url_env: NTFY_URL}", factory=dict
    )
    notify_default: tuple[str, ...] = setting(TargetNames(), "targets of tasks without notify:", ())
    heartbeat: HeartbeatSettings | None = setting(
        Heartbeat(), "e.g. {url_env: HC_URL, every: 5m}, pinged by watch", None
    )


def setting_fields() -> Iterator[SettingField]:
    """Every setting in declaration order: path, kind, default, help."""
    return _fields(Settings)


TEMPLATE_HEADER = """\
# runner.yaml: settings for this home. Every setting has a default; delete what you
# do not change. Secrets never go here (use password_env or password_cmd).
"""


def settings_template() -> str:
    """The runner.yaml that `runner init` writes: every setting, with its default."""
    return template(Settings, TEMPLATE_HEADER)


def load_settings(path: Path) -> Settings:
    """Load runner.yaml; a missing file means every default."""
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(path, None, f"cannot read: {exc}") from None
    doc = load_mapping(path, text, SettingsError)
    at = Where(1, doc.lines, doc.child_lines, child_items=doc.item_lines)
    c = Checker(path)
    settings: Settings = parse_table(c, Settings, doc.values, "runner.yaml", "", at)
    line = doc.lines.get("notify_default")
    check_target_names(settings.notify_default, settings.notify, lambda m: c.fail(line, m))
    return settings
