"""The delivery part of runner.yaml: notification targets, `notify_default`, `heartbeat`.

A target is an Apprise URL given inline (`url`, only for URLs without a secret),
from the environment (`url_env`) or from a command's output (`url_cmd`); the last
two are read at the moment of sending and never written or printed. The checks here
run without importing Apprise: its schemes are listed in runner.apprise_schemes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from runner.apprise_schemes import SCHEMES
from runner.errors import SettingsError
from runner.settings_fields import Checker, Duration, Where

DEFAULT_TIMEOUT = 10.0  # seconds: the longest a notification may take to send
DEFAULT_EVERY = 300.0  # seconds between heartbeat pings

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SOURCES = ("url", "url_env", "url_cmd")
_TARGET_KEYS = {*_SOURCES, "timeout"}
_HEARTBEAT_KEYS = {*_SOURCES, "every", "timeout"}
# Query parameters that carry a credential in Apprise URLs.
_SECRET_PARAMS = re.compile(
    r"(?i)^(pass(word)?|pwd|secret|token|access_?token|api_?key|apikey|key|webhook|auth)$"
)
# Schemes whose URL is itself a credential (a bot token, a webhook id, an API key).
_SECRET_LIST = (
    "tgram discord slack pbul pover join prowl ifttt pushed simplepush spush workflow "
    "workflows twilio sns ses mailgun sendgrid pagerduty opsgenie signl4 zulip gchat "
    "webex wxteams flock ryver pjet pjets line o365 reddit twitter tweet x spike "
    "squadcast splunk victorops bark barks gotify gotifys pushover"
)
SECRET_SCHEMES = frozenset(_SECRET_LIST.split())
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class UrlSource:
    """Where a URL comes from: exactly one of the three is set."""

    url: str | None = None
    url_env: str | None = None
    url_cmd: str | None = None

    @property
    def described(self) -> str:
        """How to name the URL in messages without showing a secret."""
        if self.url_env:
            return f"url_env {self.url_env}"
        if self.url_cmd:
            return "url_cmd"
        return "url"


@dataclass(frozen=True)
class TargetSettings:
    name: str
    source: UrlSource
    timeout: float = DEFAULT_TIMEOUT
    line: int | None = None  # in runner.yaml, for messages


@dataclass(frozen=True)
class HeartbeatSettings:
    source: UrlSource
    every: float = DEFAULT_EVERY
    timeout: float = DEFAULT_TIMEOUT


Fail = Callable[[int | None, str], SettingsError]


def _duration(c: Checker, value: Any, name: str, line: int) -> float:
    seconds: float = Duration(positive=True).parse(c, value, name, Where(line))
    return seconds


def url_problem(url: str, *, http_only: bool = False) -> str | None:
    """What is wrong with a URL written inline in runner.yaml, or None.

    The message never repeats the URL: it may hold a secret.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        return "is not a URL (expected scheme://...)"
    if http_only:
        if scheme not in ("http", "https"):
            return f"must be an http:// or https:// URL, not {scheme}://"
    elif scheme not in SCHEMES:
        return f"unknown notification scheme '{scheme}://' (not one Apprise knows)"
    if parts.password is not None:
        return "must not contain a password: use url_env or url_cmd"
    if any(_SECRET_PARAMS.match(name) for name, _ in parse_qsl(parts.query)):
        return "must not contain a token or key: use url_env or url_cmd"
    if scheme in SECRET_SCHEMES:
        return f"a {scheme}:// URL holds a token: use url_env or url_cmd"
    return None


def _source(raw: dict[str, Any], where: str, at: int, sub: dict[str, int], fail: Fail) -> UrlSource:
    given = [k for k in _SOURCES if raw.get(k) is not None]
    if len(given) != 1:
        raise fail(at, f"{where}: give exactly one of url, url_env or url_cmd")
    key = given[0]
    value = raw[key]
    line = sub.get(key, at)
    if not isinstance(value, str) or not value.strip():
        raise fail(line, f"{where}.{key} must be a non-empty string")
    if key == "url_env" and not _ENV_NAME.fullmatch(value):
        raise fail(line, f"{where}.url_env must name an environment variable")
    return UrlSource(**{key: value})


def parse_targets(c: Checker, raw: Any, at: int, sub: dict[str, int]) -> dict[str, TargetSettings]:
    """`notify:` → targets by name; `sub` holds the line of each name."""
    fail = c.fail
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail(at, "notify must be a mapping of target names to {url | url_env | url_cmd}")
    targets: dict[str, TargetSettings] = {}
    for name, item in raw.items():
        line = sub.get(str(name), at)
        where = f"notify.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise fail(line, f"notify: {name!r} is not a plain target name")
        if name == "heartbeat":  # its results are kept beside the targets' (state.py)
            raise fail(line, "notify: 'heartbeat' is reserved for the heartbeat: pick another name")
        if not isinstance(item, dict):
            raise fail(line, f"{where} must be a mapping such as {{url_env: NTFY_URL}}")
        for key in item:
            if key not in _TARGET_KEYS:
                known = ", ".join(sorted(_TARGET_KEYS))
                raise fail(line, f"unknown key '{key}' in {where} (known: {known})")
        source = _source(item, where, line, {}, fail)
        if source.url is not None:
            problem = url_problem(source.url)
            if problem is not None:
                raise fail(line, f"{where}.url {problem}")
        timeout = DEFAULT_TIMEOUT
        if "timeout" in item:
            timeout = _duration(c, item["timeout"], f"{where}.timeout", line)
        targets[name] = TargetSettings(name, source, timeout, line)
    return targets


def check_target_names(
    names: tuple[str, ...], known: dict[str, TargetSettings], fail: Callable[[str], Exception]
) -> None:
    """Each of `names` (`notify_default`) must be defined under `notify:`."""
    for name in names:
        if name not in known:
            defined = ", ".join(sorted(known)) or "none defined"
            raise fail(f"notify_default: no target '{name}' under notify: ({defined})")


def parse_heartbeat(c: Checker, raw: Any, at: int, sub: dict[str, int]) -> HeartbeatSettings | None:
    fail = c.fail
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail(at, "heartbeat must be a mapping such as {url_env: HC_URL, every: 5m}")
    for key in raw:
        if key not in _HEARTBEAT_KEYS:
            known = ", ".join(sorted(_HEARTBEAT_KEYS))
            raise fail(sub.get(str(key), at), f"unknown key '{key}' in heartbeat (known: {known})")
    source = _source(raw, "heartbeat", at, sub, fail)
    if source.url is not None:
        problem = url_problem(source.url, http_only=True)
        if problem is not None:
            raise fail(sub.get("url", at), f"heartbeat.url {problem}")
    every = DEFAULT_EVERY
    if "every" in raw:
        every = _duration(c, raw["every"], "heartbeat.every", sub.get("every", at))
    timeout = DEFAULT_TIMEOUT
    if "timeout" in raw:
        timeout = _duration(c, raw["timeout"], "heartbeat.timeout", sub.get("timeout", at))
    return HeartbeatSettings(source, every, timeout)


# -- the kinds of settings.py's field table ----------------------------------------


@dataclass(frozen=True)
class Targets:
    """`notify:`: a mapping of target names to {url | url_env | url_cmd, timeout}."""

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> dict[str, TargetSettings]:
        return parse_targets(c, value, at.line, at.keys)

    def show(self, value: Any) -> str:
        return "{}" if not value else ""

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["object", "null"], "additionalProperties": _source_schema()}


@dataclass(frozen=True)
class TargetNames:
    """A list of target names; settings.py checks them against `notify:`."""

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else value
        if names is None:
            return ()
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise c.fail(at.line, f"{name} must be a list of target names")
        return tuple(dict.fromkeys(names))

    def show(self, value: Any) -> str:
        return "[" + ", ".join(value) + "]"

    def json_schema(self) -> dict[str, Any]:
        name = {"type": "string", "minLength": 1}
        return {"anyOf": [name, {"type": ["array", "null"], "items": name}]}


@dataclass(frozen=True)
class Heartbeat:
    """`heartbeat:`: {url | url_env | url_cmd, every, timeout}."""

    def parse(self, c: Checker, value: Any, name: str, at: Where) -> HeartbeatSettings | None:
        return parse_heartbeat(c, value, at.line, at.keys)

    def show(self, value: Any) -> str:
        return ""

    def json_schema(self) -> dict[str, Any]:
        schema = _source_schema()
        schema["properties"]["every"] = schema["properties"]["timeout"]
        schema["type"] = ["object", "null"]
        return schema


def _source_schema() -> dict[str, Any]:
    """A target's (or the heartbeat's) keys, for the JSON Schema: exactly one source."""
    duration = {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*[smhd]\s*)+$"}
    return {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": "://"},
            "url_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "url_cmd": {"type": "string", "minLength": 1},
            "timeout": duration,
        },
        "additionalProperties": False,
        "oneOf": [{"required": [key]} for key in ("url", "url_env", "url_cmd")],
    }
