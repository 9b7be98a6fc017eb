"""The claude-code brain starts the CLI itself, before importing the SDK, and hands
the SDK a transport over it (claude_code_cli.py, claude_code_transport.py).

- The command line is the one the SDK's own transport builds from the same options.
- Starting the CLI imports no SDK (else nothing would overlap).
- The transport frames lines as the SDK does, says what a CLI that fails did, and
  its close ends a CLI that ignores the end of its input and SIGTERM.
Real processes throughout: a small Python script plays a CLI where the real one cannot
be made to misbehave.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from runner.brain import claude_code_cli as cli
from runner.brain.claude_code import ClaudeCodeBrain, Run
from runner.brain.claude_code_grants import permissions
from runner.brain.claude_code_setup import Ask, settings_json
from runner.home import Home
from runner.tasks.grants import ToolGrants
from tests.claude_code_support import configure

sdk = pytest.importorskip("claude_agent_sdk", reason="claude-agent-sdk is not installed")

from claude_agent_sdk import CLIJSONDecodeError, ProcessError  # noqa: E402
from claude_agent_sdk._internal.transport.subprocess_cli import (  # noqa: E402
    SubprocessCLITransport,
)

from runner.brain.claude_code_transport import CLITransport, lines  # noqa: E402

MCP = '{"mcpServers": {"notes": {"command": "notes-server", "args": ["--ro"]}}}'


@pytest.mark.parametrize(
    ("grants", "max_turns"),
    [
        (ToolGrants(), 20),
        (ToolGrants(), None),
        (ToolGrants(read=("notes/**",), write=("plans/*.md",)), 3),
        (ToolGrants(shell=True, mcp=("notes",)), 7),
    ],
)
def test_the_command_is_the_one_the_sdk_builds_from_the_same_options(
    home: Home, grants: ToolGrants, max_turns: int | None
) -> None:
    (home.root / ".mcp.json").write_text(MCP, encoding="utf-8")
    brain = ClaudeCodeBrain(configure(home).brain, home.root, cli_path=Path("/opt/claude"))
    ask = Ask(
        prompt="Do it.",
        system_append="You run unattended.\n\n## Execution 1\n--not-a-flag",
        model="claude-sonnet-5-5",
        max_tokens=1000,
        grants=grants,
        permissions=permissions(home, grants),
        max_turns=max_turns,
    )
    run = Run(ask, brain, "tag", None)
    ours = cli.command(
        "/opt/claude",
        system_append=ask.system_append,
        model=ask.model,
        perms=ask.permissions,
        max_turns=max_turns,
        settings=settings_json(),
    )
    theirs = SubprocessCLITransport(ask.prompt, brain.options(ask, "tag", run))._build_command()
    assert ours == theirs


def test_the_environment_carries_what_the_sdk_tells_the_cli(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")  # as inside a Claude Code session
    monkeypatch.setenv("CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP", "outer app")
    env = cli.environment({"RUNNER_CLAUDE_RUN": "t1", "CLAUDE_CODE_ENTRYPOINT": "x"}, home.root)
    assert env["CLAUDE_AGENT_SDK_VERSION"] == sdk.__version__
    assert env["CLAUDE_CODE_ENTRYPOINT"] == "x"  # the run's own variables win, as in the SDK
    assert env["CLAUDE_CODE_SDK_READS_SESSION_STATE"] == "1"
    assert env["RUNNER_CLAUDE_RUN"] == "t1" and env["PWD"] == str(home.root)
    assert "CLAUDECODE" not in env and "CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP" not in env
    bundled = Path(sdk.__file__).parent / "_bundled" / "claude"
    if bundled.is_file():
        assert cli.find_cli(None) == str(bundled)


def test_starting_the_cli_imports_no_sdk(home: Home, tmp_path: Path) -> None:
    """The SDK's import (half a second) overlaps the CLI's start only if the CLI is
    started first; a fresh interpreter shows what starting it imported."""
    fake_cli = tmp_path / "claude"
    fake_cli.write_text("#!/bin/sh\nread line\n", encoding="utf-8")
    fake_cli.chmod(0o755)
    configure(home)
    code = f"""
import sys, anyio
from pathlib import Path
from runner.brain.claude_code import ClaudeCodeBrain, Run
from runner.brain.claude_code_setup import Ask, settings_json
from runner.settings import load_settings
home = Path({str(home.root)!r})
brain = ClaudeCodeBrain(load_settings(home / "runner.yaml").brain, home, Path({str(fake_cli)!r}))
run = Run(Ask(prompt="Hi.", system_append="", model="m", max_tokens=10), brain, "t", None)
async def main():
    process = await run.start()
    print("claude_agent_sdk" in sys.modules, flush=True)
    process.kill()
    await process.wait()
anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_cli_started_for_an_sdk_that_then_fails_to_import_is_ended(
    home: Home, tmp_path: Path
) -> None:
    fake_cli = tmp_path / "claude"
    fake_cli.write_text("#!/bin/sh\nsleep 300\n", encoding="utf-8")
    fake_cli.chmod(0o755)
    configure(home)
    code = f"""
import sys, anyio
from pathlib import Path
from runner.brain.claude_code import ClaudeCodeBrain, Run
from runner.brain.claude_code_setup import Ask, settings_json
from runner.errors import BrainError
from runner.settings import load_settings
home = Path({str(home.root)!r})
brain = ClaudeCodeBrain(load_settings(home / "runner.yaml").brain, home, Path({str(fake_cli)!r}))
run = Run(Ask(prompt="Hi.", system_append="", model="m", max_tokens=10), brain, "t", None)
async def main():
    process = await run.start()
    sys.modules["claude_agent_sdk"] = None  # unimportable from here on
    try:
        async with anyio.create_task_group() as group:
            await run.consume(process, group)
    except* BrainError as failed:
        print(str(failed.exceptions[0]).split(" (")[0])
    with anyio.fail_after(10):
        print(await process.wait())
anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [cli.MISSING, "-9"]


def test_the_sdk_import_is_frozen_once_and_later_runs_freeze_nothing() -> None:
    """Frozen objects are never collected: a long-lived process (watch) that froze on
    every run would keep each run's garbage for good."""
    code = (
        "import gc, sys; from runner.brain import claude_code_cli as cli; cli.import_sdk(); "
        "first = gc.get_freeze_count(); leftovers = [[] for _ in range(1000)]; "
        "cli.import_sdk(); print(first > 10000, gc.get_freeze_count() == first, gc.isenabled())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]


# -- the transport over a process -------------------------------------------------------


class Chunks:
    """A byte stream that yields the given chunks, as a pipe may split them."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)


def collect(chunks: list[bytes], limit: int = 1 << 20) -> list[str]:
    async def main() -> list[str]:
        return [line async for line in lines(Chunks(chunks), limit)]

    return anyio.run(main)


def test_lines_are_framed_however_the_chunks_fall() -> None:
    text = json.dumps({"text": "naïve café ☕"}).encode() + b"\n" + b'{"b": 2}\r\n{"c": 3}'
    whole = collect([text])
    assert whole == [json.dumps({"text": "naïve café ☕"}), '{"b": 2}\r', '{"c": 3}']
    one_byte_at_a_time = collect([text[i : i + 1] for i in range(len(text))])
    assert one_byte_at_a_time == whole  # a chunk may end inside a character


def test_a_line_over_the_limit_is_an_error_even_before_it_ends() -> None:
    with pytest.raises(CLIJSONDecodeError, match="maximum buffer size of 10 bytes"):
        collect([b"0123456789", b"0123456789"], limit=10)
    assert collect([b"0123456789\n"], limit=10) == ["0123456789"]


FAKE_CLI = """
import json, signal, sys, time
mode = sys.argv[1]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("[SandboxDebug] not a message", flush=True)
print(json.dumps({"type": "system", "subtype": "init", "claude_code_version": "2.1.300"}))
print(flush=True)
sys.stderr.write("something went wrong\\n")
sys.stderr.flush()
if mode == "fails":
    sys.exit(3)
if mode == "corrupt":
    print('{"type": ', flush=True)
sys.stdin.read()
if mode == "stubborn":
    time.sleep(60)
"""


def fake(tmp_path: Path, mode: str) -> list[str]:
    script = tmp_path / "fake_cli.py"
    script.write_text(FAKE_CLI, encoding="utf-8")
    return [sys.executable, str(script), mode]


async def open_fake(argv: list[str], tmp_path: Path) -> CLITransport:
    process = await cli.spawn(argv, {"PATH": "/usr/bin:/bin"}, tmp_path)
    return CLITransport(process, argv[0], grace=0.3)


def test_messages_skip_what_is_not_json_and_a_failing_cli_is_a_process_error(
    tmp_path: Path,
) -> None:
    async def main() -> tuple[list[dict[str, Any]], BaseException | None]:
        transport = await open_fake(fake(tmp_path, "fails"), tmp_path)
        got: list[dict[str, Any]] = []
        try:
            async for message in transport.read_messages():
                got.append(message)
        except ProcessError as exc:
            return got, exc
        finally:
            await transport.close()
        return got, None

    got, error = anyio.run(main)
    assert got == [{"type": "system", "subtype": "init", "claude_code_version": "2.1.300"}]
    assert isinstance(error, ProcessError) and error.exit_code == 3


def test_a_corrupt_message_is_an_error_not_a_silent_gap(tmp_path: Path) -> None:
    async def main() -> None:
        transport = await open_fake(fake(tmp_path, "corrupt"), tmp_path)
        try:
            async for _ in transport.read_messages():
                pass
        finally:
            await transport.close()

    with pytest.raises(CLIJSONDecodeError):
        anyio.run(main)


def test_close_ends_a_cli_that_ignores_its_input_closing_and_sigterm(tmp_path: Path) -> None:
    async def main() -> tuple[int | None, float]:
        transport = await open_fake(fake(tmp_path, "stubborn"), tmp_path)
        await transport.write('{"type": "user"}\n')
        started = time.monotonic()
        await transport.close()
        await transport.close()  # twice is harmless (the SDK closes, then the brain)
        return transport.process.returncode, time.monotonic() - started

    code, took = anyio.run(main)
    assert code == -9  # SIGKILL after the grace for the end of input and for SIGTERM
    assert took < 5


def test_writing_to_a_closed_cli_is_a_connection_error(tmp_path: Path) -> None:
    from claude_agent_sdk import CLIConnectionError

    async def main() -> None:
        transport = await open_fake(fake(tmp_path, "fails"), tmp_path)
        await transport.end_input()
        assert not transport.is_ready()
        try:
            await transport.write("{}\n")
        finally:
            await transport.close()

    with pytest.raises(CLIConnectionError):
        anyio.run(main)


def test_a_cli_that_cannot_start_is_said_in_words(home: Home, tmp_path: Path) -> None:
    from runner.errors import BrainError

    not_a_program = tmp_path / "claude"
    not_a_program.write_text("just text", encoding="utf-8")  # not executable

    async def start(argv: list[str]) -> None:
        await cli.spawn(argv, {}, home.root)

    with pytest.raises(BrainError, match=r"the Claude Code CLI is missing \(Claude Code cannot"):
        anyio.run(start, [str(not_a_program)])
    with pytest.raises(BrainError, match="Claude Code not found at: /no/such/claude"):
        anyio.run(start, ["/no/such/claude"])


# -- a CLI that misbehaves, through the whole brain --------------------------------------

HUGE_LINE = """
import sys
sys.stdin.readline()  # the SDK's initialize
sys.stdout.write('{"type": "system", "x": "' + "x" * (2 << 20) + '"}\\n')
sys.stdout.flush()
sys.stdin.read()
"""

DIES = """
import sys
sys.stderr.write("fatal: no such config\\n")
sys.exit(7)
"""


def brain_with(home: Home, tmp_path: Path, body: str) -> tuple[str, bool | None, list[int]]:
    from runner.brain import process_tree
    from runner.clock import SystemClock
    from runner.run.executor import run_task
    from tests.claude_code_support import task

    script = tmp_path / "claude"
    script.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    script.chmod(0o755)
    settings = configure(home)
    task(home, "Hello.")
    brain = ClaudeCodeBrain(settings.brain, home.root, cli_path=script)
    outcome = run_task(home, settings, "hello", brain, SystemClock())
    assert outcome.status == "failed" and brain.last_tag is not None
    return outcome.record.error or "", outcome.record.retryable, process_tree.tagged(brain.last_tag)


def test_a_cli_line_over_a_megabyte_fails_the_run_and_ends_the_cli(
    home: Home, tmp_path: Path
) -> None:
    error, _, left = brain_with(home, tmp_path, HUGE_LINE)
    assert error.startswith("Claude Code failed: CLIJSONDecodeError")
    assert "maximum buffer size of 1048576 bytes" in error
    assert left == []


def test_a_cli_that_dies_at_once_is_said_with_its_last_words(home: Home, tmp_path: Path) -> None:
    error, _, left = brain_with(home, tmp_path, DIES)
    assert error.startswith("Claude Code failed: ")
    assert "exit code 7" in error or "fatal: no such config" in error, error
    assert left == []
