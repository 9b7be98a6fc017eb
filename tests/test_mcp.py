"""MCP servers through the real `mcp` SDK client, over stdio to real server processes:
the echo server written here with the SDK's server side, the published
mcp-server-time, and servers that fail to start, hang, or die mid-run."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.home import Home
from runner.tools.base import ToolOutput, ToolStartError
from runner.tools.mcp import McpTools, open_mcp

SERVERS = Path(__file__).resolve().parent / "mcp_servers"


def stdio(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": sys.executable, "args": [str(SERVERS / script), *args]}
    if env:
        entry["env"] = env
    return entry


def configure(home: Home, **servers: dict[str, Any]) -> None:
    (home.root / ".mcp.json").write_text(json.dumps({"mcpServers": servers}, indent=2))


def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.fixture
def echo(home: Home, tmp_path: Path) -> Iterator[tuple[McpTools, Path]]:
    pidfile = tmp_path / "echo.pid"
    configure(home, echo=stdio("echo_server.py", "--pidfile", str(pidfile)))
    tools = open_mcp(home, ["echo"], timeout=30, call_timeout=30)
    try:
        yield tools, pidfile
    finally:
        tools.close()


def test_echo_server_tools_are_named_and_called(echo: tuple[McpTools, Path], home: Home) -> None:
    tools, pidfile = echo
    specs = {spec.name: spec for spec in tools.specs()}
    assert {"mcp__echo__echo", "mcp__echo__fail", "mcp__echo__slow", "mcp__echo__die"} <= set(specs)
    assert specs["mcp__echo__echo"].description == "Answer with the text given."
    assert specs["mcp__echo__echo"].input_schema["properties"]["text"]["type"] == "string"
    assert specs["mcp__echo__echo"].input_schema["type"] == "object"
    out = tools.call("mcp__echo__echo", {"text": "hello ünïcode"})
    assert (out.text, out.is_error) == ("hello ünïcode", False)
    assert tools.call("mcp__echo__cwd", {}).text == str(home.root)
    pid = pids_in(pidfile)[0]
    tools.close()
    assert not alive(pid)


def test_a_tool_error_is_an_error_output_and_the_server_goes_on(
    echo: tuple[McpTools, Path],
) -> None:
    tools, _ = echo
    out = tools.call("mcp__echo__fail", {"reason": "not today"})
    assert out.is_error and "refused: not today" in out.text
    bad = tools.call("mcp__echo__echo", {"wrong": 1})  # the server rejects the arguments
    assert bad.is_error
    unknown = tools.call("mcp__echo__nope", {})
    assert unknown.is_error and "mcp__echo__nope" in unknown.text
    assert tools.call("mcp__echo__echo", {"text": "still here"}).text == "still here"


def test_names_content_and_size_made_fit_for_the_model(echo: tuple[McpTools, Path]) -> None:
    tools, _ = echo
    names = [spec.name for spec in tools.specs()]
    odd = [n for n in names if "dotted" in n]
    assert len(odd) == 1 and len(odd[0]) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", odd[0])
    assert odd[0].startswith("mcp__echo__dotted_name_x")
    assert tools.call(odd[0], {}).text == "long"
    assert tools.call("mcp__echo__picture", {}).text == "[image content: image/png]"
    big = tools.call("mcp__echo__big", {"size": 150_000})
    assert big.text.startswith("x" * 100_000)
    assert big.text.endswith("[cut: 50000 more characters not shown]")


def test_a_slow_call_times_out_naming_the_server(home: Home) -> None:
    configure(home, echo=stdio("echo_server.py"))
    with open_mcp(home, ["echo"], timeout=30, call_timeout=1) as tools:
        started = time.monotonic()
        out = tools.call("mcp__echo__slow", {"seconds": 30})
        assert time.monotonic() - started < 10
        assert out.is_error
        assert "MCP server 'echo'" in out.text and "no answer within 1 s" in out.text
        assert tools.call("mcp__echo__slow", {"seconds": 0}).text == "slept 0.0"


def test_a_server_that_dies_mid_run_is_an_error_naming_it(echo: tuple[McpTools, Path]) -> None:
    tools, pidfile = echo
    out = tools.call("mcp__echo__die", {})
    assert out.is_error
    assert "MCP server 'echo'" in out.text and "closed the connection" in out.text
    assert "dying on purpose" in out.text  # its last words on stderr
    later = tools.call("mcp__echo__echo", {"text": "x"})
    assert later.is_error and "MCP server 'echo' stopped earlier" in later.text
    tools.close()
    assert not alive(pids_in(pidfile)[0])


def test_mcp_server_time(home: Home) -> None:
    configure(home, time={"command": sys.executable, "args": ["-m", "mcp_server_time"]})
    with open_mcp(home, ["time"], timeout=30) as tools:
        names = {spec.name for spec in tools.specs()}
        assert {"mcp__time__get_current_time", "mcp__time__convert_time"} <= names
        now = tools.call("mcp__time__get_current_time", {"timezone": "Asia/Tokyo"})
        assert not now.is_error
        assert json.loads(now.text)["timezone"] == "Asia/Tokyo"
        converted = tools.call(
            "mcp__time__convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        assert json.loads(converted.text)["target"]["datetime"].endswith("21:00:00+09:00")
        bad = tools.call("mcp__time__get_current_time", {"timezone": "Mars/Olympus"})
        assert bad.is_error and "Mars/Olympus" in bad.text


def test_two_servers_route_calls_by_name(home: Home) -> None:
    configure(
        home,
        echo=stdio("echo_server.py"),
        time={"command": sys.executable, "args": ["-m", "mcp_server_time"]},
    )
    with open_mcp(home, ["time", "echo", "time"], timeout=30) as tools:
        names = [spec.name for spec in tools.specs()]
        assert len(names) == len(set(names))
        assert tools.call("mcp__echo__echo", {"text": "a"}).text == "a"
        out = tools.call("mcp__time__get_current_time", {"timezone": "UTC"})
        assert json.loads(out.text)["timezone"] == "UTC"


def test_variables_are_expanded_from_the_environment(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret-token")
    monkeypatch.delenv("MCP_TEST_UNSET", raising=False)
    env = {"TOKEN": "${MCP_TEST_TOKEN}", "OTHER": "${MCP_TEST_UNSET:-fallback}", "LIT": "$HOME"}
    configure(home, echo=stdio("echo_server.py", env=env))
    with open_mcp(home, ["echo"], timeout=30) as tools:
        assert tools.call("mcp__echo__getenv", {"name": "TOKEN"}).text == "s3cret-token"
        assert tools.call("mcp__echo__getenv", {"name": "OTHER"}).text == "fallback"
        assert tools.call("mcp__echo__getenv", {"name": "LIT"}).text == "$HOME"
        # Only a minimal environment and the server's own env reach it.
        assert tools.call("mcp__echo__getenv", {"name": "MCP_TEST_TOKEN"}).text == "<unset>"


def test_an_unset_variable_names_the_server_and_the_variable(home: Home) -> None:
    configure(home, echo=stdio("echo_server.py", env={"TOKEN": "${MCP_TEST_NOT_SET}"}))
    with pytest.raises(ToolStartError) as caught:
        open_mcp(home, ["echo"], timeout=30)
    assert "MCP server 'echo'" in str(caught.value)
    assert "MCP_TEST_NOT_SET is not set" in str(caught.value)
    assert ".mcp.json:" in str(caught.value)


def test_an_unknown_server_is_a_start_error(home: Home) -> None:
    configure(home, echo=stdio("echo_server.py"))
    with pytest.raises(ToolStartError, match=r"MCP server 'git' is not in .*\.mcp\.json"):
        open_mcp(home, ["git"], timeout=30)


def test_a_command_that_does_not_exist(home: Home) -> None:
    configure(home, broken={"command": "/nonexistent/mcp-server"})
    with pytest.raises(ToolStartError) as caught:
        open_mcp(home, ["broken"], timeout=30)
    message = str(caught.value)
    assert "MCP server 'broken' did not start" in message
    assert "cannot run '/nonexistent/mcp-server'" in message


def test_a_server_that_exits_at_once_names_it_and_hides_secrets(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_SECRET", "hunter2-very-secret")
    code = "import os, sys; print('bad token', os.environ['KEY'], file=sys.stderr); sys.exit(1)"
    configure(
        home,
        quits={
            "command": sys.executable,
            "args": ["-c", code],
            "env": {"KEY": "${MCP_TEST_SECRET}"},
        },
    )
    started = time.monotonic()
    with pytest.raises(ToolStartError) as caught:
        open_mcp(home, ["quits"], timeout=30)
    assert time.monotonic() - started < 10  # not the timeout: the exit is noticed
    message = str(caught.value)
    assert "MCP server 'quits' did not start" in message
    assert "bad token ***" in message and "hunter2" not in message


@pytest.mark.parametrize("mode", [[], ["--stubborn"]], ids=["reads-stdin", "ignores-sigterm"])
def test_a_server_that_hangs_on_initialize(home: Home, tmp_path: Path, mode: list[str]) -> None:
    pidfile = tmp_path / "silent.pid"
    configure(home, silent=stdio("silent_server.py", "--pidfile", str(pidfile), *mode))
    started = time.monotonic()
    with pytest.raises(ToolStartError) as caught:
        open_mcp(home, ["silent"], timeout=1.5)
    elapsed = time.monotonic() - started
    assert "MCP server 'silent' did not start: no answer to initialize within 1.5 s" in str(
        caught.value
    )
    # The timeout, then the SDK's shutdown: stdin closed, 2 s, SIGTERM, 2 s, SIGKILL.
    assert 1.5 <= elapsed < 1.5 + 4 + 3
    assert not alive(pids_in(pidfile)[0])


def test_one_failing_server_stops_the_others(home: Home, tmp_path: Path) -> None:
    pidfile = tmp_path / "echo.pid"
    configure(
        home,
        echo=stdio("echo_server.py", "--pidfile", str(pidfile)),
        broken={"command": "/nonexistent/mcp-server"},
    )
    with pytest.raises(ToolStartError, match="MCP server 'broken'"):
        open_mcp(home, ["echo", "broken"], timeout=30)
    assert not alive(pids_in(pidfile)[0])


def test_a_server_writing_garbage_to_stdout_does_not_reach_our_stderr(home: Home) -> None:
    # In a process of its own: pytest's log capture would hide what a user would see.
    configure(home, noisy=stdio("echo_server.py", "--noise"))
    script = (
        "import sys; from pathlib import Path; from runner.home import Home\n"
        "from runner.tools.mcp import open_mcp\n"
        "with open_mcp(Home(Path(sys.argv[1])), ['noisy'], timeout=30) as tools:\n"
        "    print(tools.call('mcp__noisy__echo', {'text': 'x'}).text)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(home.root)], capture_output=True, text=True, check=True
    )
    assert result.stdout == "x\n"
    assert result.stderr == ""


def test_a_grandchild_of_a_server_is_stopped_too(home: Home, tmp_path: Path) -> None:
    """A server that exits when its stdin closes but leaves a child behind (a wrapper
    like npx or uvx could): the SDK stops only the server; the runner stops the rest."""
    pidfile = tmp_path / "silent.pid"
    configure(home, silent=stdio("silent_server.py", "--pidfile", str(pidfile), "--child"))
    with pytest.raises(ToolStartError):
        open_mcp(home, ["silent"], timeout=1)
    server, child = pids_in(pidfile)
    assert not alive(server)
    deadline = time.monotonic() + 5  # the grandchild is not ours to reap: init does it
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


HOLD = """
import sys, time
from pathlib import Path
from runner.home import Home
from runner.tools.mcp import open_mcp
tools = open_mcp(Home(Path(sys.argv[1])), ["echo"], timeout=30)
print("ready", flush=True)
time.sleep(120)
"""


def test_servers_of_a_killed_runner_are_stopped_by_the_next_start(
    home: Home, tmp_path: Path
) -> None:
    pidfile = tmp_path / "echo.pid"
    configure(
        home,
        echo=stdio("echo_server.py", "--pidfile", str(pidfile), "--child"),
        time={"command": sys.executable, "args": ["-m", "mcp_server_time"]},
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home.root)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
    holder.kill()  # SIGKILL: the runner stops nothing
    holder.wait()
    server, child = pids_in(pidfile)
    assert alive(child)  # the server may exit on stdin's end; its child lingers
    with open_mcp(home, ["time"], timeout=30) as tools:
        assert tools.specs()
    deadline = time.monotonic() + 5
    while (alive(child) or alive(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child) and not alive(server)


def test_close_during_a_call_ends_the_call(echo: tuple[McpTools, Path]) -> None:
    """`watch` stopping: the toolset is closed while a call waits on a slow server."""
    tools, pidfile = echo
    outputs: list[ToolOutput] = []
    caller = threading.Thread(
        target=lambda: outputs.append(tools.call("mcp__echo__slow", {"seconds": 60}))
    )
    started = time.monotonic()
    caller.start()
    time.sleep(0.5)
    tools.close()
    caller.join(20)
    assert not caller.is_alive() and time.monotonic() - started < 15
    [out] = outputs
    assert out.is_error and "MCP server 'echo'" in out.text
    assert not alive(pids_in(pidfile)[0])


def test_close_twice_and_calls_after_close(echo: tuple[McpTools, Path]) -> None:
    tools, _ = echo
    tools.close()
    tools.close()
    out = tools.call("mcp__echo__echo", {"text": "x"})
    assert out.is_error


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(flag: str) -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS / "echo_server.py"), flag, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def http_echo() -> Iterator[str]:
    for port in _serve("--http"):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def sse_echo() -> Iterator[str]:
    for port in _serve("--sse"):
        yield f"http://127.0.0.1:{port}/sse"


def test_an_sse_server(home: Home, sse_echo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_BEARER", "tok-456")
    headers = {"Authorization": "Bearer ${MCP_TEST_BEARER}"}
    configure(home, old={"type": "sse", "url": sse_echo, "headers": headers})
    with open_mcp(home, ["old"], timeout=30) as tools:
        assert tools.call("mcp__old__echo", {"text": "over sse"}).text == "over sse"


def test_an_http_server_with_headers_from_the_environment(
    home: Home, http_echo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_BEARER", "tok-123")
    headers = {"Authorization": "Bearer ${MCP_TEST_BEARER}"}
    configure(home, remote={"type": "http", "url": http_echo, "headers": headers})
    with open_mcp(home, ["remote"], timeout=30) as tools:
        assert tools.call("mcp__remote__echo", {"text": "over http"}).text == "over http"
        auth = tools.call("mcp__remote__header", {"name": "authorization"})
        assert auth.text == "Bearer tok-123"


def test_an_http_server_that_is_not_there(home: Home) -> None:
    configure(home, remote={"type": "http", "url": f"http://127.0.0.1:{_free_port()}/mcp"})
    with pytest.raises(ToolStartError, match="MCP server 'remote' did not start"):
        open_mcp(home, ["remote"], timeout=5)
