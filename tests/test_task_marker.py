"""The `# runner state` marker is found only where it really starts the runner's block.

A line `# runner state` inside a quoted scalar or a flow collection is the user's text;
the user part of a task file must come back byte for byte after any number of state
writes, in every YAML style (issue 13, defect 3).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runner.errors import TaskFileError
from runner.home import Home
from runner.init import init_home
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus

QUOTED = 'title: Quoted\ninstructions: "Do this first.\n# runner state\nThen this, and keep it."\n'


def write(home: Home, name: str, text: str) -> Path:
    path = home.tasks / f"{name}.yaml"
    path.write_bytes(text.encode("utf-8"))
    return path


def user_part_after_writes(home: Home, path: Path) -> str:
    task = tasks.parse_task(home, path)
    for status in (TaskStatus.RUNNING, TaskStatus.COMPLETED):
        task = tasks.write_state(task, replace(task.state, status=status, attempts=1))
    text = path.read_bytes().decode("utf-8")
    assert text.endswith(tasks.render_state(task.state))
    return text[: -len(tasks.render_state(task.state))]


def test_marker_inside_a_double_quoted_scalar_is_user_text(home: Home) -> None:
    path = write(home, "quoted", QUOTED)
    before = tasks.parse_task(home, path).instructions
    assert user_part_after_writes(home, path) == QUOTED
    after = tasks.parse_task(home, path)
    assert after.instructions == before and "Then this" in after.instructions
    assert after.state.status == "completed"


@pytest.mark.parametrize(
    "tail",
    [
        'tools:\n  read: ["shared/**"]\n  write: ["shared/out/**"]\n',  # a block mapping
        "tools:\n  mcp:\n    - time\n    - git\n\n# mine\n",  # nested, a comment after
        "notify_on:\n- completed\n- failed\n",  # a block sequence at the left margin
    ],
)
def test_a_block_collection_last_keeps_the_state_block_apart(home: Home, tail: str) -> None:
    # The soak found it: a block node's end mark is where the next token starts, i.e.
    # after the comment lines below it, so the marker seemed inside `tools:` and every
    # task granting tools lost its state (a second marker on each write).
    text = "title: Tools\ninstructions: x\n" + tail
    path = write(home, "tooled", text)
    assert user_part_after_writes(home, path) == text
    assert tasks.parse_task(home, path).state.status == "completed"
    assert path.read_text(encoding="utf-8").count("# runner state") == 1


def test_marker_inside_a_flow_collection_is_user_text(home: Home) -> None:
    # A comment between flow entries: not a scalar, but inside a node all the same.
    text = "title: [\n# runner state\n]\ninstructions: x\n"
    path = write(home, "flow", text)
    with pytest.raises(TaskFileError, match="'title' must be text"):
        tasks.parse_task(home, path)  # (a list title is an error, but the split is right)
    user, state = tasks.split_text(text)
    assert user == text and state is None


def test_keys_below_the_marker_that_are_not_state_stay_the_users(home: Home) -> None:
    # A hand edit appended `model:` below the runner's block: it is the user's text.
    text = "title: t\ninstructions: x\n# runner state\nstatus: completed\nmodel: m2\n"
    path = write(home, "below", text)
    task = tasks.parse_task(home, path)
    tasks.write_state(task, replace(task.state, status=TaskStatus.FAILED))
    again = tasks.parse_task(home, path)
    assert again.model == "m2" and again.state.status == "failed"
    assert again.instructions == "x"


def test_a_flow_mapping_root_cannot_hold_the_state_block(home: Home) -> None:
    # Appending block keys after `{...}` would make the file unparseable: refused.
    path = write(home, "flowroot", "{title: t, instructions: x}\n")
    task = tasks.parse_task(home, path)
    with pytest.raises(TaskFileError, match="state"):
        tasks.write_state(task, replace(task.state, status=TaskStatus.RUNNING))
    assert path.read_text() == "{title: t, instructions: x}\n"


# -- the property: every style, any text, byte for byte ------------------------------

LINE = st.one_of(
    st.sampled_from(["# runner state", "#runner state", "# runner state  ", "status: running"]),
    st.text(alphabet="abc XYZ:#'\"\\é\t", max_size=20),
)


def _dq(lines: list[str]) -> str:
    body = "\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return f'"{body}"'


def _sq(lines: list[str]) -> str:
    return "'" + "\n".join(line.replace("'", "''") for line in lines) + "'"


def _block(indicator: str, lines: list[str]) -> str:
    return indicator + "\n" + "".join(f"  {line}\n" if line.strip() else "\n" for line in lines)


STYLES = {
    "double": lambda lines: _dq(lines) + "\n",
    "single": lambda lines: _sq(lines) + "\n",
    "literal": lambda lines: _block("|", lines),
    "folded": lambda lines: _block(">", lines),
    "keep": lambda lines: _block("|+", lines),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    style=st.sampled_from(sorted(STYLES)),
    lines=st.lists(LINE, min_size=1, max_size=6),
    title_lines=st.lists(LINE, min_size=1, max_size=3),
    trailer=st.sampled_from(
        [
            "",
            "# a comment of mine\n",
            "model: m  # trailing\n",
            "tools:\n  read: [notes/**]\n",
            "tools:\n  mcp:\n  - time\n",
        ]
    ),
)
def test_user_part_round_trips_in_every_style(
    tmp_path_factory: pytest.TempPathFactory,
    style: str,
    lines: list[str],
    title_lines: list[str],
    trailer: str,
) -> None:
    home = Home(tmp_path_factory.mktemp("h") / "home")
    init_home(home)
    text = f"title: {_dq(title_lines)}\ninstructions: {STYLES[style](lines)}{trailer}"
    path = write(home, "t", text)
    try:
        before = tasks.parse_task(home, path)
    except TaskFileError:
        assume(False)  # not a valid task in the first place (e.g. empty instructions)
        return
    assert user_part_after_writes(home, path) == text
    after = tasks.parse_task(home, path)
    assert (after.title, after.instructions, after.model) == (
        before.title,
        before.instructions,
        before.model,
    )
    assert after.state.status == "completed" and after.state.attempts == 1
