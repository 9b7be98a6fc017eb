from __future__ import annotations

from dataclasses import replace

import pytest

from runner.errors import TaskFileError, UsageError
from runner.home import Home
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.tasks.walk import iter_task_paths

HAND = """\
# My weekly review. Keep this comment!
title: Weekly review   # trailing comment
instructions: |
  Read the notes below and list the three most important open items.

  - keep blank lines
model: some-model
"""


def write(home: Home, task_id: str, text: str) -> None:
    path = home.tasks / f"{task_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_hand_written_task_loads(home: Home) -> None:
    write(home, "weekly-review", HAND)
    task = tasks.load_task(home, "weekly-review")
    assert task.key == "weekly-review" and task.title == "Weekly review"
    assert task.instructions.startswith("Read the notes") and task.model == "some-model"
    assert task.state == tasks.TaskState()


def test_explicit_key(home: Home) -> None:
    write(home, "a", "instructions: x\nkey: shared-journal\n")
    assert tasks.load_task(home, "a").key == "shared-journal"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "title: x\ninstructions: y\nmax-tokens: 5\n",
            3,
            "unknown key 'max-tokens' (did you mean 'max_tokens'?)",
        ),
        ("title: x\n", 1, "missing required key 'instructions'"),
        ("instructions: [1, 2]\n", 1, "'instructions' must be text"),
        ("instructions: x\nmax_tokens: lots\n", 2, "'max_tokens' must be a whole number"),
        ("instructions: x\nstatus: weird\n", 2, "'status' must be one of"),
        ("instructions: x\nkey: ../etc\n", 2, "not a valid key"),
        ("instructions: x\ntitle: [\n", 3, "invalid YAML"),
        ("- just\n- a list\n", 1, "expected a mapping"),
        ("instructions: x\ninstructions: y\n", 2, "duplicate key"),
        ("title: t\ninstructions: '   '\n", 2, "'instructions' is empty"),
        ("instructions: x\n# runner state\nsession_id: [a]\n", 3, "'session_id' must be text"),
        ("instructions: x\ncaldav_uid: {a: b}\n", 2, "'caldav_uid' must be text, not dict"),
        ("instructions: x\nstarted:\n  - 1\n", 2, "'started' must be text, not list"),
    ],
)
def test_errors_name_the_line(home: Home, text: str, line: int, words: str) -> None:
    write(home, "broken", text)
    with pytest.raises(TaskFileError) as info:
        tasks.load_task(home, "broken")
    assert info.value.line == line, str(info.value)
    assert words in info.value.problem
    assert info.value.exit_code == 2


def test_not_utf8_is_a_clear_error(home: Home) -> None:
    (home.tasks / "bin.yaml").write_bytes(b"instructions: \xff\xfe\n")
    with pytest.raises(TaskFileError, match="not UTF-8"):
        tasks.load_task(home, "bin")


def test_unknown_task_and_bad_ids(home: Home) -> None:
    with pytest.raises(UsageError, match="no such task"):
        tasks.load_task(home, "nope")
    for bad in ("../x", "a/../../b", "/etc/passwd", "archive"):
        with pytest.raises(UsageError, match="invalid task id"):
            tasks.task_path(home, bad)


def test_state_update_keeps_user_part_byte_for_byte(home: Home) -> None:
    write(home, "weekly-review", HAND)
    task = tasks.load_task(home, "weekly-review")
    state = tasks.TaskState(
        status=TaskStatus.COMPLETED,
        attempts=1,
        session_id=task.session_id,
        created="2026-11-26T08:00:00.000812Z",
        started="2026-11-26T08:00:00.004113Z",
        finished="2026-11-26T08:00:04.502113Z",
        error="line one\nline: two 'quoted' \"x\" ünï",
    )
    tasks.write_state(task, state)
    text = task.path.read_text()
    assert text.startswith(HAND)
    assert "\n# runner state\nstatus: completed\nattempts: 1\n" in text
    assert "created: 2026-11-26T08:00:00.000812Z\n" in text
    again = tasks.load_task(home, "weekly-review")
    assert again.state == state
    # A second update replaces the block rather than appending another.
    tasks.write_state(again, replace(state, status=TaskStatus.FAILED))
    text2 = task.path.read_text()
    assert text2.count("# runner state") == 1 and text2.startswith(HAND)


def test_hand_edit_saved_meanwhile_is_kept(home: Home) -> None:
    write(home, "t", "title: Old\ninstructions: x\n")
    task = tasks.load_task(home, "t")
    # The user saves an edit after the runner loaded the task...
    write(home, "t", "title: New  # edited while running\ninstructions: x\n")
    tasks.write_state(task, replace(task.state, status=TaskStatus.RUNNING))
    text = task.path.read_text()
    assert text.startswith("title: New  # edited while running\ninstructions: x\n")
    assert tasks.load_task(home, "t").state.status == "running"


def test_state_keys_outside_the_block_are_moved_in(home: Home) -> None:
    write(home, "t", "status: completed\ntitle: T\nattempts: 3\ninstructions: |\n  do it\n")
    task = tasks.load_task(home, "t")
    assert task.state.status == "completed" and task.state.attempts == 3
    tasks.write_state(task, replace(task.state, attempts=4))
    text = task.path.read_text()
    assert text.startswith("title: T\ninstructions: |\n  do it\n# runner state\n")
    assert tasks.load_task(home, "t").state.attempts == 4


def test_no_trailing_newline_in_user_part(home: Home) -> None:
    write(home, "t", "instructions: x")
    task = tasks.load_task(home, "t")
    tasks.write_state(task, replace(task.state, status=TaskStatus.RUNNING))
    assert task.path.read_text().startswith("instructions: x\n# runner state\n")


def test_occurrence_task_key_and_fields(home: Home) -> None:
    text = tasks.new_task_text(
        {
            "title": "Daily briefing",
            "instructions": "Brief me.",
            "source": "caldav",
            "calendar": "agent",
            "caldav_uid": "0b3c@example.com",
            "occurrence": "2026-11-26T09:00:00+01:00",
            "recurrence_id": "0b3cexample.com-12345678",
        },
        tasks.TaskState(),
    )
    write(home, "0b3cexample.com-12345678/20261126T080000Z", text)
    task = tasks.load_task(home, "0b3cexample.com-12345678/20261126T080000Z")
    assert task.key == "0b3cexample.com-12345678" and task.is_occurrence
    assert task.occurrence == "2026-11-26T09:00:00+01:00"
    assert task.state.status == "pending"


def test_iter_task_paths_skips_hidden_and_temp(home: Home) -> None:
    write(home, "a", "instructions: x\n")
    write(home, "s-12345678/20261126", "instructions: x\n")
    (home.tasks / ".a.yaml.123.tmp").write_text("x")
    (home.tasks / ".hidden.yaml").write_text("x")
    ids = [tasks.task_id_for(home, p) for p in iter_task_paths(home)]
    assert ids == ["a", "hello", "s-12345678/20261126"]


def test_state_update_keeps_the_file_mode(home: Home) -> None:
    write(home, "t", "instructions: x\n")
    path = home.tasks / "t.yaml"
    path.chmod(0o640)
    task = tasks.load_task(home, "t")
    tasks.write_state(task, replace(task.state, status=TaskStatus.RUNNING))
    assert path.stat().st_mode & 0o777 == 0o640
    fresh = home.tasks / "fresh.yaml"
    from runner.fsutil import atomic_write

    atomic_write(fresh, "instructions: y\n")
    assert fresh.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "instructions",
    [
        "one line",
        "line one\nline two: yes\n  indented\n",
        "trailing space \nx",
        "a\n\n\nb\n",
        "calendar text\x85with a NEL\u2028and separators\u2029",
    ],
)
def test_runner_written_text_round_trips(home: Home, instructions: str) -> None:
    text = tasks.new_task_text({"title": "T", "instructions": instructions}, tasks.TaskState())
    if "\n" in instructions and " \n" not in instructions:
        assert "instructions: |" in text  # readable in an editor
    write(home, "s-12345678/20261126", text)
    assert tasks.load_task(home, "s-12345678/20261126").instructions == instructions


def test_crlf_user_part_stays_byte_for_byte(home: Home) -> None:
    user = b"# saved on Windows\r\ntitle: T\r\ninstructions: |\r\n  do it\r\n"
    path = home.tasks / "t.yaml"
    path.write_bytes(user)
    task = tasks.load_task(home, "t")
    tasks.write_state(task, replace(task.state, status=TaskStatus.RUNNING, attempts=1))
    tasks.write_state(tasks.load_task(home, "t"), replace(task.state, status=TaskStatus.COMPLETED))
    data = path.read_bytes()
    assert data.startswith(user + b"# runner state\r\nstatus: completed\r\n")
    assert data.count(b"# runner state") == 1 and b"\n" not in data.replace(b"\r\n", b"")
    assert tasks.load_task(home, "t").state.status == "completed"


@pytest.mark.parametrize("rel", ["work/review.yaml", "archive.yaml", "x/archive.yaml"])
def test_a_file_no_task_id_can_name_is_reported(home: Home, rel: str) -> None:
    path = home.tasks / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("instructions: hi\nkey: fine\n")
    with pytest.raises(TaskFileError) as info:
        tasks.parse_task(home, path)
    assert str(info.value).startswith(f"{path}:1: ")


def test_state_error_with_yaml_only_line_breaks_round_trips(home: Home) -> None:
    write(home, "t", "instructions: x\n")
    task = tasks.load_task(home, "t")
    error = "server said: a\x85b\u2028# runner state\u2029status: completed"
    tasks.write_state(task, replace(task.state, status=TaskStatus.FAILED, error=error))
    again = tasks.load_task(home, "t")
    assert again.state.error == error and again.state.status == "failed"
