"""`.mcp.json`: Claude Code's format, read strictly, with the file and line of each
problem, and `${VAR}` expanded only when a server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.home import Home
from runner.tools.mcpconfig import (
    HttpServer,
    McpConfigError,
    StdioServer,
    expand,
    key_lines,
    load_mcp_config,
    parse_mcp_config,
    variables,
)
from tests.conftest import cli

GOOD = """{
  "mcpServers": {
    "git": {
      "command": "uvx",
      "args": ["mcp-server-git", "--repository", "${REPO:-.}"],
      "env": {"GIT_TOKEN": "${GIT_TOKEN}"}
    },
    "remote": {
      "type": "http",
      "url": "https://mcp.example.com/${TENANT}/mcp",
      "headers": {"Authorization": "Bearer ${REMOTE_TOKEN}"}
    }
  }
}
"""


def test_a_good_file(home: Home) -> None:
    (home.root / ".mcp.json").write_text(GOOD)
    config = load_mcp_config(home)
    git = config.servers["git"]
    assert git == StdioServer(
        "git",
        "uvx",
        ("mcp-server-git", "--repository", "${REPO:-.}"),
        {"GIT_TOKEN": "${GIT_TOKEN}"},
        3,
    )
    remote = config.servers["remote"]
    assert isinstance(remote, HttpServer) and remote.line == 8
    assert variables(git) == {"REPO", "GIT_TOKEN"}
    assert variables(remote) == {"TENANT", "REMOTE_TOKEN"}


def test_no_file_means_no_servers(home: Home) -> None:
    assert load_mcp_config(home).servers == {}


def test_expand_takes_values_and_defaults_from_the_environment() -> None:
    config = parse_mcp_config(Path(".mcp.json"), GOOD)
    env = {"GIT_TOKEN": "ghp_x", "TENANT": "acme", "REMOTE_TOKEN": "r$1"}
    git = expand(config.servers["git"], config.path, env)
    assert isinstance(git, StdioServer)
    assert git.args == ("mcp-server-git", "--repository", ".")
    assert git.env == {"GIT_TOKEN": "ghp_x"}
    remote = expand(config.servers["remote"], config.path, env)
    assert isinstance(remote, HttpServer)
    assert remote.url == "https://mcp.example.com/acme/mcp"
    assert remote.headers == {"Authorization": "Bearer r$1"}  # values are not expanded again
    with_repo = expand(config.servers["git"], config.path, {**env, "REPO": "/r"})
    assert isinstance(with_repo, StdioServer) and with_repo.args[-1] == "/r"
    with pytest.raises(McpConfigError) as caught:
        expand(config.servers["remote"], config.path, {"TENANT": "acme"})
    assert str(caught.value) == (
        ".mcp.json:8: MCP server 'remote': environment variable REMOTE_TOKEN is not set"
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{\n  "mcpServers": {\n    "git": {"command": "uvx",}\n  }\n}', 3, "invalid JSON"),
        ("", 1, "invalid JSON"),
        ("[]", 1, "expected an object with the key 'mcpServers'"),
        ('{\n "mcpServers": {},\n "servers": {}\n}', 3, "unknown key 'servers'"),
        ('{"mcpServers": []}', 1, "'mcpServers' must be an object"),
        ('{"mcpServers": {\n"git": "uvx"}}', 2, "server 'git' must be an object"),
        ('{"mcpServers": {\n"git": {}}}', 2, "server 'git': 'command' must be a non-empty string"),
        (
            '{"mcpServers": {"git": {\n"command": "uvx",\n"args": "mcp-server-git"}}}',
            3,
            "server 'git': 'args' must be a list of strings",
        ),
        (
            '{"mcpServers": {"git": {"command": "uvx", "args": [\n"a",\n 3]}}}',
            3,
            "server 'git': args[1] must be a non-empty string",
        ),
        (
            '{"mcpServers": {"git": {"command": "uvx",\n"env": {"A": 1}}}}',
            2,
            "server 'git': env.A must be a string",
        ),
        (
            '{"mcpServers": {"git": {"command": "uvx",\n"cwd": "/tmp"}}}',
            2,
            "server 'git': unknown key 'cwd'",
        ),
        (
            '{"mcpServers": {"r": {\n"type": "websocket", "url": "http://x"}}}',
            2,
            "server 'r': type must be 'stdio', 'http' or 'sse'",
        ),
        ('{"mcpServers": {"r": {"type": "http",\n"url": "ftp://x"}}}', 2, "must start with http"),
        (
            '{"mcpServers": {"r": {"type": "http", "url": "http://x",\n"command": "x"}}}',
            2,
            "server 'r': unknown key 'command'",
        ),
        ('{"mcpServers": {\n"my.server": {"command": "x"}}}', 2, "server name 'my.server'"),
        (
            '{"mcpServers": {\n"git": {"command": "x"},\n"git": {"command": "y"}}}',
            3,
            "duplicate key 'git'",
        ),
        (
            '{"mcpServers": {"git": {"command": "x",\n"env": {"T": "${NOT A NAME}"}}}}',
            2,
            "'${NOT A NAME}' is not a variable name",
        ),
    ],
)
def test_problems_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(McpConfigError) as caught:
        parse_mcp_config(Path("/h/.mcp.json"), text)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"/h/.mcp.json:{line}: ")
    assert message in str(caught.value)


def test_a_byte_order_mark_and_deep_nesting(home: Home) -> None:
    (home.root / ".mcp.json").write_text("\ufeff" + GOOD, encoding="utf-8")
    assert set(load_mcp_config(home).servers) == {"git", "remote"}
    (home.root / ".mcp.json").write_text('{"mcpServers": ' + "[" * 100_000)
    with pytest.raises(McpConfigError, match="nested too deeply"):
        load_mcp_config(home)


def test_key_lines_follow_nesting_and_escapes() -> None:
    text = '{\n "a\\"b": [1,\n  {"c": "}]"},\n  []],\n "d": {}}'
    lines, duplicates = key_lines(text)
    assert lines[('a"b',)] == 2
    assert lines[('a"b', 1)] == 3
    assert lines[('a"b', 1, "c")] == 3
    assert lines[('a"b', 2)] == 4
    assert lines[("d",)] == 5
    assert duplicates == []


def test_runner_check_reports_a_broken_mcp_json(home: Home) -> None:
    (home.root / ".mcp.json").write_text('{"mcpServers": {\n  "git": {"command": 7}\n}}\n')
    result = cli(home, "check")
    assert result.returncode == 1
    path = home.root / ".mcp.json"
    assert f"{path}:2: server 'git': 'command' must be a non-empty string" in result.stdout + (
        result.stderr
    )
    (home.root / ".mcp.json").write_text(GOOD)
    assert cli(home, "check").returncode == 0


def test_runner_check_names_a_server_a_task_wants_that_is_not_configured(home: Home) -> None:
    task = "title: T\ninstructions: I\ntools:\n  read: ['notes/**']\n  mcp: [time, nope]\n"
    (home.tasks / "t.yaml").write_text(task)
    result = cli(home, "check")
    assert result.returncode == 1
    path = home.tasks / "t.yaml"
    assert f"{path}:5: tools.mcp: MCP server 'time' is not in .mcp.json (there is none)" in (
        result.stdout
    )
    (home.root / ".mcp.json").write_text('{"mcpServers": {"time": {"command": "x"}}}')
    result = cli(home, "check")
    assert result.returncode == 1
    assert f"{path}:5: tools.mcp: MCP server 'nope' is not in .mcp.json" in result.stdout
    assert "'time'" not in result.stdout
    (home.root / ".mcp.json").write_text(
        '{"mcpServers": {"time": {"command": "x"}, "nope": {"command": "y"}}}'
    )
    assert cli(home, "check").returncode == 0


def test_runner_check_warns_of_an_unset_variable_of_a_server_in_use(home: Home) -> None:
    config = '{"mcpServers": {\n"git": {"command": "x", "env": {"T": "${MCP_CHECK_UNSET}"}},\n'
    config += '"idle": {"command": "x", "env": {"T": "${MCP_CHECK_UNSET}"}}}}'
    (home.root / ".mcp.json").write_text(config)
    (home.tasks / "t.yaml").write_text("title: T\ninstructions: I\ntools:\n  mcp: [git]\n")
    result = cli(home, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    message = (
        "MCP server 'git': environment variable MCP_CHECK_UNSET is not set in this environment"
    )
    assert f"{home.root / '.mcp.json'}:2: {message}" in result.stderr
    assert "'idle'" not in result.stderr  # no task names it: not this home's concern
    assert "MCP_CHECK_UNSET" not in cli(home, "check", env={"MCP_CHECK_UNSET": "v"}).stderr
