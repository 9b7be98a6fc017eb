"""The grant guard against a home laid out with symlinks: a home whose runner.yaml,
tasks/ or logs/ is a link to a place elsewhere in the home (dotfiles style) is
guarded where the files really are. The runner's own file tools, Claude Code's
permission check and `output:` on real files."""

from __future__ import annotations

import pytest

from runner.brain.claude_code_grants import refusal
from runner.deliver.output import OutputRefused, write_output
from runner.home import Home
from runner.tasks.grants import ToolGrants
from runner.tools.files import FileTools

WILD = ToolGrants(read=("**",), write=("**", "conf/*", "*/*/*.yaml"))


def linked(home: Home) -> None:
    """runner.yaml, .mcp.json, tasks/ and logs/ kept in conf/, linked from the top."""
    conf = home.root / "conf"
    conf.mkdir()
    for name in ("runner.yaml", ".mcp.json"):
        top = home.root / name
        (conf / name).write_text(top.read_text() if top.exists() else "{}\n")
        top.unlink(missing_ok=True)
        top.symlink_to(f"conf/{name}")
    for name in ("tasks", "logs"):
        (home.root / name).rename(conf / name)
        (home.root / name).symlink_to(f"conf/{name}")


@pytest.mark.parametrize(
    "target",
    [
        "conf/runner.yaml",
        "conf/.mcp.json",
        "conf/tasks/escalate.yaml",
        "conf/tasks/series/x.yaml",
        "conf/logs/plan.jsonl",
    ],
)
def test_a_wildcard_grant_never_reaches_a_control_file_through_its_real_place(
    home: Home, target: str
) -> None:
    linked(home)
    before = (home.root / target).read_bytes() if (home.root / target).exists() else None
    tools = FileTools(home.root, WILD)
    out = tools.call("write_file", {"path": target, "content": "tools: {write: ['**']}\n"})
    assert out.is_error, out.text
    after = (home.root / target).read_bytes() if (home.root / target).exists() else None
    assert after == before
    why = refusal(home.root, WILD, "Write", {"file_path": str(home.root / target)})
    assert why is not None
    with pytest.raises(OutputRefused):
        write_output(home, target, "tools: {write: ['**']}")


def test_logs_kept_elsewhere_are_not_readable_either(home: Home) -> None:
    linked(home)
    (home.root / "conf" / "logs" / "plan.jsonl").write_text('{"secret": 1}\n')
    tools = FileTools(home.root, WILD)
    assert tools.call("read_file", {"path": "conf/logs/plan.jsonl"}).is_error
    listed = tools.call("list_files", {"glob": "conf/**"}).text
    assert "plan.jsonl" not in listed
    assert "plan.jsonl" not in tools.call("search_files", {"pattern": "secret", "glob": "**"}).text


def test_a_literal_grant_still_writes_through_the_real_place(home: Home) -> None:
    linked(home)
    tools = FileTools(home.root, ToolGrants(read=(), write=("conf/tasks/**", "conf/runner.yaml")))
    assert not tools.call("write_file", {"path": "conf/tasks/new.yaml", "content": "x\n"}).is_error
    assert not tools.call("write_file", {"path": "conf/runner.yaml", "content": "x\n"}).is_error
    # `conf/**` names conf/, not the tasks inside it
    wide = FileTools(home.root, ToolGrants(read=(), write=("conf/**",)))
    assert wide.call("write_file", {"path": "conf/tasks/new.yaml", "content": "y\n"}).is_error
    assert not wide.call("write_file", {"path": "conf/notes.md", "content": "y\n"}).is_error
