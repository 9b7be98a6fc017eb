"""Shared fixtures: every test gets its own home in a tmpdir, and no test can touch
the user's real home or the network (ANTHROPIC_* are cleared)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from runner.home import Home
from runner.init import init_home
from tests.caldav_servers import dav_server, radicale, radicale_htpasswd, xandikos  # noqa: F401
from tests.cyrus_server import cyrus  # noqa: F401
from tests.fake_anthropic import FakeAnthropic, fake_anthropic  # noqa: F401  (a shared fixture)
from tests.receiver import receiver  # noqa: F401  (a shared fixture)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "RUNNER_", "CALDAV_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TZ", "UTC")
    yield


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A fresh home laid out by `runner init`."""
    h = Home(tmp_path / "home")
    init_home(h)
    return h


def cli(
    home: Home | Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `runner` CLI in a subprocess against `home`."""
    root = home.root if isinstance(home, Home) else home
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(root), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        input=input,
        check=False,
    )


def kill_at(home: Home, point: str, *args: str) -> int:
    """Run the CLI until it reports `point` (runner/testpause.py), then SIGKILL it there;
    returns its pid."""
    env = {**os.environ, "RUNNER_TEST_PAUSE": point}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--home", str(home.root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # blocks until the pause point (or the process ends)
            if line.strip() == f"PAUSED {point}":
                break
        else:
            pytest.fail(f"the process never reached {point}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@pytest.fixture
def cc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME for Claude Code (the claude-code brain's tests): no login, no
    settings, no sessions of the user's."""
    where = tmp_path / "cc-home"
    where.mkdir()
    monkeypatch.setenv("HOME", str(where))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    return where


@pytest.fixture
def cc_api(monkeypatch: pytest.MonkeyPatch, cc_home: Path) -> Iterator[FakeAnthropic]:
    """A fake Messages API, with this process's environment pointing Claude Code at it."""
    with FakeAnthropic() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


# Hypothesis profiles: short in `just test` (seconds), long in `just fuzz`.
hypothesis_settings.register_profile("default", max_examples=25, deadline=None)
hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
