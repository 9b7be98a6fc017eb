"""The claude-code brain's grants without the CLI: the `shell` grant in a task file,
`runner check` about it, and the check every Claude Code tool call passes first."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.brain.claude_code_grants import permissions, refusal
from runner.check import check_home
from runner.errors import TaskFileError
from runner.home import Home
from runner.tasks.files import load_task
from runner.tasks.grants import ToolGrants

GRANTS = ToolGrants(read=("notes/**",), write=("plans/**",))


def write_task(home: Home, tools: str) -> None:
    (home.tasks / "t.yaml").write_text(f"title: T\ninstructions: go\ntools:\n{tools}")


def test_shell_is_a_grant_of_its_own(home: Home) -> None:
    write_task(home, "  shell: true\n")
    task = load_task(home, "t")
    assert task.tools.shell and not task.tools.empty
    write_task(home, "  shell: yes please\n")
    with pytest.raises(TaskFileError, match=r"'tools\.shell' must be true or false"):
        load_task(home, "t")


def test_check_says_shell_needs_the_claude_code_brain(home: Home) -> None:
    write_task(home, "  shell: true\n")
    [warning] = check_home(home).warnings
    assert "tools.shell is a grant of the claude-code brain only" in str(warning)
    home.settings_file.write_text("brain:\n  provider: claude-code\n")
    assert check_home(home).warnings == ()


def test_grants_become_claude_codes_tools(home: Home) -> None:
    assert permissions(home, ToolGrants()).tools == []
    perms = permissions(home, GRANTS)
    assert perms.tools == ["Read", "Glob", "Grep", "Write", "Edit"]
    root = home.root.resolve().as_posix()
    assert perms.allowed == ["Read", "Glob", "Grep", f"Edit(/{root}/plans/**)"]
    assert "Bash" in permissions(home, ToolGrants(shell=True)).tools


@pytest.mark.parametrize(
    ("tool", "args", "refused"),
    [
        ("Read", {"file_path": "{home}/notes/a.md"}, None),
        ("Read", {"file_path": "notes/a.md"}, None),
        ("Read", {"file_path": "{home}/runner.yaml"}, "not granted to read"),
        ("Read", {"file_path": "/etc/passwd"}, "outside the home"),
        ("Write", {"file_path": "{home}/plans/x.md"}, None),
        ("Write", {"file_path": "{home}/notes/a.md"}, "not granted to write"),
        ("Edit", {"file_path": "{home}/plans/../notes/a.md"}, "not granted to write"),
        ("Write", {"file_path": "{home}/logs/x.jsonl"}, "never open to tools"),
        ("Glob", {"pattern": "notes/**/*.md"}, None),
        ("Glob", {"pattern": "**/*"}, "search only in a folder granted whole"),
        ("Glob", {"pattern": "../*", "path": "notes"}, "stay inside the folder"),
        ("Grep", {"pattern": "x", "path": "{home}/notes"}, None),
        ("Grep", {"pattern": "x"}, "search only in a folder granted whole"),
        ("Bash", {"command": "ls"}, "no shell is granted"),
        ("WebFetch", {"url": "https://example.com"}, "WebFetch is not granted"),
        ("mcp__git__status", {}, "MCP server git is not granted"),
    ],
)
def test_every_call_is_checked_against_the_grants(
    home: Home, tool: str, args: dict[str, str], refused: str | None
) -> None:
    (home.root / "notes").mkdir()
    (home.root / "notes" / "a.md").write_text("a\n")
    filled = {k: v.replace("{home}", str(home.root)) for k, v in args.items()}
    why = refusal(home.root, GRANTS, tool, filled)
    assert (why is None) if refused is None else (why is not None and refused in why), why


def test_a_home_reached_through_a_symlink_is_the_same_home(home: Home, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(home.root)
    (home.root / "plans").mkdir()
    assert refusal(link, GRANTS, "Write", {"file_path": f"{link}/plans/x.md"}) is None
    why = refusal(link, GRANTS, "Write", {"file_path": f"{home.root}/notes/x.md"})
    assert why is not None and "not granted to write" in why


def test_mcp_servers_reach_claude_code_in_its_own_format(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "secret-token")
    (home.root / ".mcp.json").write_text(
        '{"mcpServers": {"old": {"type": "sse", "url": "http://127.0.0.1:9/sse"},'
        ' "new": {"type": "http", "url": "http://127.0.0.1:9/mcp",'
        ' "headers": {"Authorization": "Bearer ${TOKEN}"}}}}'
    )
    servers = permissions(home, ToolGrants(mcp=("old", "new"))).mcp_servers
    assert servers["old"] == {"type": "sse", "url": "http://127.0.0.1:9/sse", "headers": {}}
    assert servers["new"]["type"] == "http"
    assert servers["new"]["headers"] == {"Authorization": "Bearer secret-token"}
