"""runner.yaml: every setting has a default; unknown keys are an error (path:line).

Secrets never live here: a CalDAV password is named by `password_env` or fetched by
`password_cmd` at the moment it is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import SettingsError
from runner.yamlload import load_mapping

DEFAULT_MODEL = "claude-sonnet-5-5"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90s`, `1h30m`, `30d` → seconds."""
    compact = text.replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 1h30m, 30d)")
    return sum(float(n) * _UNIT[u] for n, u in parts)


@dataclass(frozen=True)
class BrainSettings:
    provider: str = "auto"  # auto | anthropic | offline
    model: str = DEFAULT_MODEL
    max_tokens: int = 4096
    timeout: float = 120.0
    max_retries: int = 2  # the SDK's own retries within one attempt
    system: str | None = None  # a system prompt for every task without its own


@dataclass(frozen=True)
class CalendarSettings:
    name: str
    url: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_cmd: str | None = None

    @property
    def is_caldav(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class CompressionSettings:
    max_tokens: int = 50000
    max_executions: int = 20
    keep_recent: int = 5


@dataclass(frozen=True)
class Settings:
    brain: BrainSettings = field(default_factory=BrainSettings)
    # None: every folder under calendars/ is a local calendar.
    calendars: tuple[CalendarSettings, ...] | None = None
    sync_every: float = 300.0
    catch_up: str = "latest"  # latest | all | none
    grace: float = 12 * 3600.0
    all_day_at: time = time(9, 0)
    retries: int = 2
    workers: int = 2
    shutdown_grace: float = 10.0
    compression: CompressionSettings = field(default_factory=CompressionSettings)


_TOP = {
    "brain",
    "calendars",
    "sync_every",
    "catch_up",
    "grace",
    "all_day_at",
    "retries",
    "workers",
    "shutdown_grace",
    "compression",
}
_BRAIN = {"provider", "model", "max_tokens", "timeout", "max_retries", "system"}
_CAL = {"name", "url", "username", "password_env", "password_cmd"}
_COMP = {"max_tokens", "max_executions", "keep_recent"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int | None, message: str) -> SettingsError:
        return SettingsError(self.path, line, message)

    def keys(
        self, data: Any, allowed: set[str], where: str, lines: dict[str, int], at: int
    ) -> None:
        if not isinstance(data, dict):
            raise self.fail(at, f"{where} must be a mapping")
        for key in data:
            if key not in allowed:
                raise self.fail(
                    lines.get(str(key), at),
                    f"unknown key '{key}' in {where} (known: {', '.join(sorted(allowed))})",
                )

    def integer(self, value: Any, name: str, line: int, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(line, f"{name} must be a whole number ≥ {minimum}, not {value!r}")
        return value

    def duration(self, value: Any, name: str, line: int, positive: bool = False) -> float:
        if not isinstance(value, str):
            raise self.fail(line, f"{name} must be a duration such as 90s or 1h30m, not {value!r}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.fail(line, f"{name}: {exc}") from None
        if positive and seconds <= 0:
            raise self.fail(line, f"{name} must be longer than zero, not {value!r}")
        return seconds

    def text(self, value: Any, name: str, line: int) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(line, f"{name} must be a non-empty string")
        return value


def load_settings(path: Path) -> Settings:
    """Load runner.yaml; a missing file means every default."""
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(path, None, f"cannot read: {exc}") from None
    doc = load_mapping(path, text, SettingsError)
    c = _Checker(path)
    c.keys(doc.values, _TOP, "runner.yaml", doc.lines, 1)
    values, lines = doc.values, doc.lines
    kwargs: dict[str, Any] = {}

    if "brain" in values:
        line = lines["brain"]
        raw = values["brain"] or {}
        c.keys(raw, _BRAIN, "brain", doc.child_lines.get("brain", {}), line)
        sub = doc.child_lines.get("brain", {})
        b: dict[str, Any] = {}
        if "provider" in raw:
            if raw["provider"] not in ("auto", "anthropic", "offline"):
                raise c.fail(sub["provider"], "brain.provider must be auto, anthropic or offline")
            b["provider"] = raw["provider"]
        if "model" in raw:
            b["model"] = c.text(raw["model"], "brain.model", sub["model"])
        if "max_tokens" in raw:
            b["max_tokens"] = c.integer(raw["max_tokens"], "brain.max_tokens", sub["max_tokens"], 1)
        if "timeout" in raw:
            b["timeout"] = c.duration(raw["timeout"], "brain.timeout", sub["timeout"], True)
        if "system" in raw:
            b["system"] = c.text(raw["system"], "brain.system", sub["system"])
        if "max_retries" in raw:
            b["max_retries"] = c.integer(
                raw["max_retries"], "brain.max_retries", sub["max_retries"]
            )
        kwargs["brain"] = BrainSettings(**b)

    if "calendars" in values:
        line = lines["calendars"]
        raw_list = values["calendars"]
        if raw_list is None:
            raw_list = []
        if not isinstance(raw_list, list):
            raise c.fail(line, "calendars must be a list of {name, url, ...}")
        cals: list[CalendarSettings] = []
        seen: set[str] = set()
        items = doc.item_lines.get("calendars", [])
        for index, item in enumerate(raw_list):
            where = f"calendars[{index}]"
            at, sub = items[index] if index < len(items) else (line, {})
            c.keys(item, _CAL, where, sub, at)
            name = c.text(item.get("name"), f"{where}.name", sub.get("name", at))
            if not _NAME.fullmatch(name):
                raise c.fail(sub["name"], f"{where}.name {name!r} must be a plain folder name")
            if name in seen:
                raise c.fail(sub["name"], f"calendar name {name!r} is used twice")
            seen.add(name)
            if item.get("password_env") and item.get("password_cmd"):
                raise c.fail(at, f"{where}: give password_env or password_cmd, not both")
            for opt in ("url", "username", "password_env", "password_cmd"):
                if opt in item and item[opt] is not None:
                    c.text(item[opt], f"{where}.{opt}", sub.get(opt, at))
            if item.get("url") and urlsplit(item["url"]).password is not None:
                # Secrets never live in runner.yaml (SPEC): say so without echoing it.
                raise c.fail(
                    sub.get("url", at),
                    f"{where}.url must not contain a password: use password_env or password_cmd",
                )
            cals.append(
                CalendarSettings(
                    name=name,
                    url=item.get("url"),
                    username=item.get("username"),
                    password_env=item.get("password_env"),
                    password_cmd=item.get("password_cmd"),
                )
            )
        kwargs["calendars"] = tuple(cals)

    for name in ("sync_every", "grace", "shutdown_grace"):
        if name in values:
            kwargs[name] = c.duration(values[name], name, lines[name], name == "sync_every")
    if "catch_up" in values:
        if values["catch_up"] not in ("latest", "all", "none"):
            raise c.fail(lines["catch_up"], "catch_up must be latest, all or none")
        kwargs["catch_up"] = values["catch_up"]
    if "retries" in values:
        kwargs["retries"] = c.integer(values["retries"], "retries", lines["retries"])
    if "workers" in values:
        kwargs["workers"] = c.integer(values["workers"], "workers", lines["workers"], 1)
    if "all_day_at" in values:
        kwargs["all_day_at"] = _time_of_day(c, values["all_day_at"], lines["all_day_at"])

    if "compression" in values:
        line = lines["compression"]
        raw = values["compression"] or {}
        sub = doc.child_lines.get("compression", {})
        c.keys(raw, _COMP, "compression", sub, line)
        comp = {k: c.integer(v, f"compression.{k}", sub.get(k, line), 1) for k, v in raw.items()}
        kwargs["compression"] = CompressionSettings(**comp)

    return Settings(**kwargs)


def _time_of_day(c: _Checker, value: Any, line: int) -> time:
    # YAML 1.1 reads an unquoted 9:00 as the base-60 number 540: accept that too.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    raise c.fail(line, f'all_day_at must be a time of day like "09:00", not {value!r}')
