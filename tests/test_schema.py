"""The JSON Schemas agree with `runner check`: generated from the loaders' own tables,
they accept every example file and reject a sample of each kind of error check
rejects. (check stays the authority for what a schema cannot say.)"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from runner.home import Home
from runner.schema import SCHEMA_FILES, generated, settings_schema, shipped, task_schema
from runner.tasks.fields import TASK_FIELDS, keys_of
from runner.tasks.marker import STATE_KEYS

from .conftest import REPO, cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def valid(schema: dict[str, Any], text: str) -> bool:
    validator = jsonschema.Draft202012Validator(schema)
    return not list(validator.iter_errors(yaml.safe_load(text)))


def test_the_shipped_schemas_are_the_generated_ones() -> None:
    for name, text in generated().items():
        assert shipped(name) == text, f"runner/schemas/{name} drifted: run `just docs`"
    for doc in (settings_schema(), task_schema()):
        jsonschema.Draft202012Validator.check_schema(doc)


def test_the_task_table_is_what_the_loader_knows() -> None:
    assert keys_of("state") == STATE_KEYS
    assert set(TASK_FIELDS) == set(task_schema()["properties"])


def test_init_writes_modelines_that_point_at_the_schemas(home: Home) -> None:
    settings_line = home.settings_file.read_text().splitlines()[0]
    task_line = (home.tasks / "hello.yaml").read_text().splitlines()[0]
    assert settings_line == "# yaml-language-server: $schema=.schemas/runner.schema.json"
    assert task_line == "# yaml-language-server: $schema=../.schemas/task.schema.json"
    for line, folder in ((settings_line, home.root), (task_line, home.tasks)):
        target = (folder / line.split("$schema=", 1)[1]).resolve()
        assert json.loads(target.read_text())["$schema"].startswith("https://json-schema.org/")
    assert valid(settings_schema(), home.settings_file.read_text())
    assert valid(task_schema(), (home.tasks / "hello.yaml").read_text())


def example_settings() -> list[str]:
    start = README.index("## Settings (`runner.yaml`)")
    block = README[README.index("```yaml", start) + 7 : README.index("```\n", start + 30)]
    return [block, (REPO / "runner.yaml").read_text()]


def example_tasks() -> list[str]:
    files = [p.read_text() for p in sorted((REPO / "tasks").glob("*.yaml"))]
    calendars = (REPO / "docs" / "calendars.md").read_text(encoding="utf-8")
    start = calendars.index("### A schedule without a calendar")
    block = calendars[calendars.index("```yaml", start) + 7 : calendars.index("```\n", start)]
    return [*files, block]


def test_every_example_file_is_valid() -> None:
    for text in example_settings():
        assert valid(settings_schema(), text), text
    for text in example_tasks():
        assert valid(task_schema(), text), text


SETTINGS_ERRORS = [
    "catch_up: sometimes\n",
    "grace: 5 minutes\n",
    'all_day_at: "25:00"\n',
    "retries: -1\n",
    "workers: two\n",
    "brain:\n  modle: x\n",
    "brain:\n  provider: openai\n",
    "compression:\n  keep_recent: 0\n",
    "calendars: agent\n",
    "calendars:\n  - url: https://x.example/\n",
    "calendars:\n  - name: ../up\n",
    "sync_everyy: 5m\n",
    "notify:\n  phone: {url_env: NTFY_URL, url: 'json://x'}\n",
    "notify:\n  phone: {address: x}\n",
    "heartbeat: {every: 5m}\n",
]

TASK_ERRORS = [
    "title: x\n",
    "instructions: ''\n",
    "instructions: [a, b]\n",
    "instructions: x\ninstrucions: y\n",
    "instructions: x\nmax_tokens: 0\n",
    "instructions: x\nkey: ../up\n",
    "instructions: x\nstatus: done\n",
    "instructions: x\nattempts: -2\n",
    "instructions: x\nschedule: {rrule: FREQ=DAILY, at: '09:00'}\n",
    "instructions: x\nschedule: {rrule: FREQ=DAILY, at: '09:00', tz: UTC, every: 2}\n",
    "instructions: x\nsource: email\n",
    "instructions: x\noutput: /etc/passwd\n",
    "instructions: x\nnotify_on: [sometimes]\n",
]


@pytest.mark.parametrize("text", SETTINGS_ERRORS)
def test_what_check_rejects_in_settings_the_schema_rejects(home: Home, text: str) -> None:
    home.settings_file.write_text(text, encoding="utf-8")
    assert cli(home, "check").returncode == 1
    assert not valid(settings_schema(), text)


@pytest.mark.parametrize("text", TASK_ERRORS)
def test_what_check_rejects_in_a_task_the_schema_rejects(home: Home, text: str) -> None:
    (home.tasks / "bad.yaml").write_text(text, encoding="utf-8")
    assert cli(home, "check").returncode == 1
    assert not valid(task_schema(), text)


def test_schemas_ship_in_the_package() -> None:
    for name in SCHEMA_FILES:
        assert (REPO / "runner" / "schemas" / name).is_file()
    assert 'runner = ["schemas/*.json"]' in (REPO / "pyproject.toml").read_text()
