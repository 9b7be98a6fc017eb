"""Where the runner's block of a task file starts, and the guard on rewriting it.

A task file is the user's text, then a line `# runner state`, then the state keys
the runner rewrites. Such a line inside a quoted scalar or a flow collection is the
user's text and must never be taken for the marker (issue 13: a double-quoted
`instructions` holding that line lost everything after it on the first state write).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from runner.errors import FileError, TaskFileError
from runner.yamlload import load_mapping

MARKER = "# runner state"
STATE_KEYS = ("status", "attempts", "session_id", "created", "started", "finished", "error")


def split_text(text: str) -> tuple[str, str | None]:
    """(user part, state part or None).

    The runner's block starts at the last line `# runner state` that stands outside
    every YAML node (a quoted scalar or a flow collection may hold such a line as the
    user's text) and is followed only by state keys (a key the user added below the
    block stays the user's). Line starts are "\n"-based, and node positions come from
    the pure-Python composer, whose marks count characters like str indexing does.
    """
    candidates: list[int] = []
    offset = 0
    for line in text.split("\n"):
        if line.rstrip() == MARKER:
            candidates.append(offset)
        offset += len(line) + 1
    if not candidates:
        return text, None
    spans = _top_level_spans(text)
    if spans is None:
        start = candidates[-1]  # not YAML at all: the last marker line, as before
    else:
        outside = [c for c in candidates if not any(lo <= c < hi for lo, hi, _ in spans)]
        if not outside:
            return text, None
        start = outside[-1]
        if any(key not in STATE_KEYS for lo, _, key in spans if lo > start):
            return text, None  # user keys below the last marker: no runner block yet
    end = text.find("\n", start)
    return text[:start], ("" if end < 0 else text[end + 1 :])


def _top_level_spans(text: str) -> list[tuple[int, int, str | None]] | None:
    """(start, end, key) character spans of the top-level entries, or None if the
    text does not compose. A flow-style root is one span (it cannot be split)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        return [(node.start_mark.index, node.end_mark.index, None)]
    return [
        (k.start_mark.index, _end(v), str(k.value) if k.tag.endswith(":str") else None)
        for k, v in node.value
    ]


def _end(node: yaml.Node) -> int:
    """Where a node's text ends. A block collection's end mark is where the next token
    starts, i.e. past the comment lines below it (the marker among them): its text
    ends with its last child's instead."""
    if isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _end(last[1] if isinstance(node, yaml.MappingNode) else last)
    return int(node.end_mark.index)


def check_round_trip(path: Path, old: str, new: str) -> None:
    """Never write a task file that would not load back with the same user values.

    The last guard for user text: a layout the state block cannot follow (a
    `{flow: mapping}` root, a `...` document end) is an error naming the file, and
    the file stays as it was.
    """
    try:
        before = {k: v for k, v in load_mapping(path, old).values.items() if k not in STATE_KEYS}
        after = load_mapping(path, new).values
    except FileError as exc:
        raise TaskFileError(
            path,
            None,
            f"cannot add the runner state block to this file ({exc.problem}); "
            "write the task as `key: value` lines",
        ) from None
    if any(after.get(k) != v for k, v in before.items()):
        raise TaskFileError(
            path, None, "cannot add the runner state block without changing the task's text"
        )
