from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from runner.errors import SettingsError
from runner.settings import Settings, load_settings, parse_duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runner.yaml"
    path.write_text(text)
    return path


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "runner.yaml") == Settings()


def test_init_template_loads_as_defaults(home: object) -> None:
    from runner.home import Home

    assert isinstance(home, Home)
    assert load_settings(home.settings_file) == Settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("30d", 2592000), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "m5", "5x", "1h 30", "-5m"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_full_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
brain:
  provider: offline
  model: some-model
  max_tokens: 100
  timeout: 30s
calendars:
  - name: agent
    url: https://dav.example.com/cal/
    username: me
    password_env: CALDAV_PASSWORD
  - name: local
sync_every: 1m
catch_up: all
grace: 1h
all_day_at: "07:30"
retries: 3
workers: 4
shutdown_grace: 5s
compression:
  max_tokens: 1000
  keep_recent: 2
""",
    )
    s = load_settings(path)
    assert s.brain.provider == "offline" and s.brain.timeout == 30
    assert s.calendars is not None and [c.name for c in s.calendars] == ["agent", "local"]
    assert s.calendars[0].is_caldav and not s.calendars[1].is_caldav
    assert s.all_day_at == time(7, 30) and s.catch_up == "all" and s.grace == 3600
    assert s.compression.max_tokens == 1000 and s.compression.max_executions == 20


def test_unquoted_time_of_day_is_understood(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "all_day_at: 9:15\n")).all_day_at == time(9, 15)


CALS = "calendars:\n  - name: a\n    url: http://127.0.0.1:1/a/\n  - name: b\n    url: http://127.0.0.1:1/b/\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("retries: 2\nbogus: 1\n", 2, "unknown key 'bogus'"),
        ("brain:\n  provider: auto\n  modle: x\n", 3, "unknown key 'modle'"),
        ("grace: 12\n", 1, "duration"),
        ("catch_up: sometimes\n", 1, "latest, all or none"),
        ("workers: 0\n", 1, "workers"),
        ("retries: [\n", 2, "invalid YAML"),
        ("compression:\n  keep_recent: -1\n", 2, "compression.keep_recent"),
        ("brain:\n  timeout: 0s\n", 2, "brain.timeout must be longer than zero"),
        ("sync_every: 0m\n", 1, "sync_every must be longer than zero"),
        (CALS + "    password: hunter2\n", 6, "unknown key 'password' in calendars[1]"),
        (
            "calendars:\n  - name: a\n    url: https://me:hunter2@dav.example.com/a/\n",
            3,
            "calendars[0].url must not contain a password",
        ),
        (CALS + "    username: 5\n", 6, "calendars[1].username"),
        (CALS.replace("name: b", "name: a"), 4, "calendar name 'a' is used twice"),
        (CALS.replace("name: b", "name: ../b"), 4, "plain folder name"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert info.value.exit_code == 2
    assert "hunter2" not in str(info.value)  # a secret is never echoed


def test_every_setting_is_in_the_init_template() -> None:
    """The template is written from the same declarations that load_settings reads."""
    from runner.settings import setting_fields, settings_template

    text = settings_template()
    names = [f.name for f in setting_fields()]
    assert {"provider", "model", "password_cmd", "keep_recent", "shutdown_grace"} <= set(names)
    for f in setting_fields():
        assert f"{f.name}:" in text, f.path
    assert "auto | anthropic | offline" in text


def test_uncommented_template_values_load_as_the_defaults(tmp_path: Path) -> None:
    """Every default the template shows, uncommented, means the default."""
    import re

    from runner.settings import settings_template

    body = settings_template().split("\n\n", 1)[1]  # after the header
    kept = []
    for line in body.splitlines():
        line = re.sub(r"^(\s*)# ", r"\1", line)  # uncomment
        line = re.sub(r"\s{2,}# .*$", "", line)  # drop the help
        if line.lstrip().startswith(
            ("system:", "calendars:", "- ", "url:", "username:", "pass", "trusted:")
        ):
            continue  # examples, not defaults
        kept.append(line)
    assert len(kept) > 15
    assert load_settings(write(tmp_path, "\n".join(kept) + "\n")) == Settings()


def test_an_unknown_provider_names_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "brain:\n  provider: gpt\n")
    with pytest.raises(
        SettingsError, match=r":2: brain.provider must be auto, anthropic, offline or claude-code"
    ):
        load_settings(path)
