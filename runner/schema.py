"""JSON Schemas for runner.yaml and task files, generated from the loaders' own tables.

The settings schema comes from the settings field table (settings.setting_fields), the
task schema from tasks/fields.py: the same declarations the loaders check against, so
an editor that validates with them (yaml-language-server, through the modeline that
`runner init` writes) agrees with `runner check`. `runner check` stays the authority:
a few rules cannot be said in a schema (a duration that must be positive, a URL that
must not carry a password) and only `check` finds those.

The generated files ship in the package (runner/schemas/), written by `just docs`; a
test fails when they drift from the tables.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

from runner.settings import Settings
from runner.settings_fields import (
    Choice,
    Duration,
    Integer,
    ListOf,
    Table,
    Text,
    TimeOfDay,
    declared,
)
from runner.tasks.fields import TASK_FIELDS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILES = {"runner.schema.json": "settings", "task.schema.json": "task"}
DURATION = r"^\s*(\d+(\.\d+)?\s*[smhd]\s*)+$"


def settings_schema() -> dict[str, Any]:
    schema = _table(Settings)
    return {
        "$schema": DRAFT,
        "title": "runner.yaml",
        "description": "Settings of a calendar agent runner home (every setting has a default).",
        **schema,
    }


def task_schema() -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "title": "task file",
        "description": "A calendar agent runner task: tasks/<id>.yaml.",
        "type": "object",
        "properties": {
            name: {**f.schema, "description": f.help} for name, f in TASK_FIELDS.items()
        },
        "required": ["instructions"],
        "additionalProperties": False,
    }


def _table(table: type[Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in declared(table):
        spec = f.metadata["runner.setting"]
        help_text = {"description": spec.help} if spec.help else {}
        properties[f.name] = {**_kind(spec.kind), **help_text}
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out: dict[str, Any] = {
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _kind(kind: Any) -> dict[str, Any]:
    """One setting kind as JSON Schema; a kind may say its own (`json_schema()`), and
    one that does not allows anything (check decides)."""
    own = getattr(kind, "json_schema", None)
    if callable(own):
        return dict(own())
    if isinstance(kind, Integer):
        return {"type": "integer", "minimum": kind.minimum}
    if isinstance(kind, Duration):
        return {"type": "string", "pattern": DURATION}
    if isinstance(kind, Text):
        out: dict[str, Any] = {"type": ["string", "null"] if kind.nullable else "string"}
        out["minLength"] = 1
        if kind.pattern is not None:
            out["pattern"] = f"^(?:{kind.pattern.pattern})$"
        return out
    if isinstance(kind, Choice):
        return {"enum": [str(c) for c in kind.choices]}
    if isinstance(kind, TimeOfDay):
        return {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*([01]?\d|2[0-3]):[0-5]\d\s*$"},
                {"type": "integer", "minimum": 0, "maximum": 1439},
            ]
        }
    if isinstance(kind, Table):
        return _table(kind.table)
    if isinstance(kind, ListOf):
        return {"type": ["array", "null"], "items": {**_table(kind.table), "type": "object"}}
    return {}


def generated() -> dict[str, str]:
    """File name → text, as `just docs` writes them into runner/schemas/."""
    docs = {"runner.schema.json": settings_schema(), "task.schema.json": task_schema()}
    return {
        name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for name, doc in docs.items()
    }


def shipped(name: str) -> str:
    """A schema file as shipped in the package."""
    return resources.files("runner").joinpath("schemas", name).read_text(encoding="utf-8")


if __name__ == "__main__":
    from pathlib import Path

    folder = Path(__file__).parent / "schemas"
    folder.mkdir(exist_ok=True)
    for name, text in generated().items():
        (folder / name).write_text(text, encoding="utf-8")
