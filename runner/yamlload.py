"""Strict YAML loading with line numbers, for task files and runner.yaml.

Safe loading only (the C loader when libyaml is there). One parse yields both the
values and the line of every top-level key, so errors can say `path:line: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import FileError

try:
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _Base  # type: ignore[assignment]


class _Loader(_Base):
    """Constructor failures as YAML errors at the node: a date that does not exist
    (`2026-02-30`) makes PyYAML's timestamp constructor raise a bare ValueError,
    which would otherwise escape as a traceback with no line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            what = "a date or time that does not exist" if "timestamp" in node.tag else "a value"
            raise yaml.constructor.ConstructorError(
                None, None, f"{what} ({node.value!r}): {exc}", node.start_mark
            ) from None


@dataclass(frozen=True)
class Mapping:
    values: dict[str, Any]
    lines: dict[str, int]  # 1-based line of each top-level key
    child_lines: dict[str, dict[str, int]]  # lines of keys in nested mappings
    # For a list value: each item's line and the lines of its keys (calendars: [...]).
    item_lines: dict[str, list[tuple[int, dict[str, int]]]] = field(default_factory=dict)


def load_mapping(path: Path, text: str, error: type[FileError] = FileError) -> Mapping:
    """Parse `text` (from `path`) as a YAML mapping; an empty document is `{}`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Mapping({}, {}, {})
        if not isinstance(node, yaml.MappingNode):
            raise error(path, node.start_mark.line + 1, "expected a mapping of keys to values")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise error(path, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise error(path, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise error(path, None, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    child_lines: dict[str, dict[str, int]] = {}
    item_lines: dict[str, list[tuple[int, dict[str, int]]]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in lines:
            raise error(path, key_node.start_mark.line + 1, f"duplicate key '{key}'")
        lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            child_lines[key] = {str(k.value): k.start_mark.line + 1 for k, _ in value_node.value}
        elif isinstance(value_node, yaml.SequenceNode):
            item_lines[key] = [
                (
                    item.start_mark.line + 1,
                    {str(k.value): k.start_mark.line + 1 for k, _ in item.value}
                    if isinstance(item, yaml.MappingNode)
                    else {},
                )
                for item in value_node.value
            ]
    if not isinstance(data, dict):  # pragma: no cover - guarded by the node check
        raise error(path, 1, "expected a mapping")
    return Mapping({str(k): v for k, v in data.items()}, lines, child_lines, item_lines)
