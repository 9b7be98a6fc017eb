"""`runner service`: run `runner watch` at login, as a systemd user unit or a launchd agent.

Nothing is enabled or started without being asked: `install` writes the unit (and an
environment file the user owns, mode 0600, that starts with only comments) and prints
the command that enables it. Secrets never go into the unit: variables such as
`ANTHROPIC_API_KEY` or a calendar's `password_env` are read from that environment file
at start (systemd's `EnvironmentFile=`; for launchd a `/bin/sh` wrapper sources it).

One unit per home: its name carries the home folder's name and a hash of its path, so
two homes get two services and reinstalling the same home rewrites the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from runner.errors import UsageError
from runner.fsutil import atomic_write
from runner.home import Home
from runner.settings import Settings

PLATFORMS = ("linux", "macos")
_SLUG_DROP = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class ServicePaths:
    platform: str
    name: str  # unit name (linux) or launchd label (macos)
    unit: Path
    env_file: Path
    log: str  # where its output goes, as a user would look at it


@dataclass(frozen=True)
class ServiceResult:
    paths: ServicePaths
    written: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    state: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "version": 1,
            "platform": self.paths.platform,
            "name": self.paths.name,
            "unit": str(self.paths.unit),
            "env_file": str(self.paths.env_file),
            "log": self.paths.log,
            "written": list(self.written),
            "kept": list(self.kept),
            "removed": list(self.removed),
            "next": list(self.next_steps),
            "state": self.state,
        }


def this_platform() -> str:
    return "macos" if sys.platform == "darwin" else "linux"


def slug(home: Home) -> str:
    readable = _SLUG_DROP.sub("-", home.root.name.lower()).strip("-")[:24] or "home"
    digest = hashlib.sha256(str(home.root).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"


def service_paths(home: Home, platform: str, environ: dict[str, str] | None = None) -> ServicePaths:
    env = os.environ if environ is None else environ
    user_home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config")
    name = f"calendar-runner-{slug(home)}"
    env_file = config / "calendar-runner" / f"{slug(home)}.env"
    if platform == "linux":
        return ServicePaths(
            "linux",
            f"{name}.service",
            config / "systemd" / "user" / f"{name}.service",
            env_file,
            f"journalctl --user -u {name}.service",
        )
    if platform == "macos":
        label = f"org.calendar-runner.{slug(home)}"
        log = user_home / "Library" / "Logs" / "calendar-runner" / f"{slug(home)}.log"
        return ServicePaths(
            "macos",
            label,
            user_home / "Library" / "LaunchAgents" / f"{label}.plist",
            env_file,
            str(log),
        )
    raise UsageError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS)})")


def command_line(home: Home) -> list[str]:
    """How the service starts the watch: this interpreter, so the same install runs."""
    return [sys.executable, "-m", "runner", "--home", str(home.root), "watch"]


def secret_names(settings: Settings) -> list[str]:
    """Variables a run may need, named (never valued) in the environment file: the
    API key, and every `*_env` setting (a calendar's password, a target's URL)."""
    names = ["ANTHROPIC_API_KEY"]
    _env_names(settings, names)
    return list(dict.fromkeys(names))


def _env_names(value: object, out: list[str]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            inner = getattr(value, item.name)
            if item.name.endswith("_env") and isinstance(inner, str) and inner:
                out.append(inner)
            else:
                _env_names(inner, out)
    elif isinstance(value, dict):
        for inner in value.values():
            _env_names(inner, out)
    elif isinstance(value, list | tuple):
        for inner in value:
            _env_names(inner, out)


def env_file_text(home: Home, settings: Settings) -> str:
    lines = [
        f"# Environment for `runner watch` on {home.root}, read at each start.",
        "# One NAME=value per line. This file is yours (mode 0600); it is never in git.",
        "# Variables this home's settings name:",
        *[f"# {name}=" for name in secret_names(settings)],
    ]
    return "\n".join(lines) + "\n"


def systemd_unit(home: Home, paths: ServicePaths, settings: Settings) -> str:
    stop = int(settings.shutdown_grace) + 15
    return "\n".join(
        [
            "[Unit]",
            f"Description=calendar agent runner: watch {_specifiers(str(home.root))}",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={' '.join(_systemd_quote(a) for a in command_line(home))}",
            f"WorkingDirectory={_specifiers(str(home.root))}",
            f"EnvironmentFile=-{_specifiers(str(paths.env_file))}",
            "Environment=PYTHONUNBUFFERED=1",
            "Restart=on-failure",
            "RestartSec=30",
            "KillSignal=SIGTERM",
            f"TimeoutStopSec={stop}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def _specifiers(value: str) -> str:
    """A path or text taken whole by systemd (spaces allowed): only `%` is special."""
    return value.replace("%", "%%")


def _systemd_quote(arg: str) -> str:
    """One word of ExecStart= (split on spaces, so quoted when it has any)."""
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        return arg.replace("%", "%%")
    # `$$`: systemd substitutes ${VAR} (and a lone $VAR) in ExecStart=, even in quotes.
    quoted = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return '"' + quoted + '"'


def launchd_plist(home: Home, paths: ServicePaths) -> str:
    # launchd has no environment file: a shell sources it, then becomes the runner.
    script = (
        f"set -a; [ -f {shlex.quote(str(paths.env_file))} ] && . "
        f"{shlex.quote(str(paths.env_file))}; set +a; exec "
        + " ".join(shlex.quote(a) for a in command_line(home))
    )
    args = "".join(f"\n    <string>{escape(a)}</string>" for a in ("/bin/sh", "-c", script))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{escape(paths.name)}</string>
  <key>ProgramArguments</key>
  <array>{args}
  </array>
  <key>WorkingDirectory</key>
  <string>{escape(str(home.root))}</string>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>30</integer>
  <key>StandardOutPath</key>
  <string>{escape(paths.log)}</string>
  <key>StandardErrorPath</key>
  <string>{escape(paths.log)}</string>
</dict>
</plist>
"""


def enable_steps(paths: ServicePaths) -> tuple[str, ...]:
    if paths.platform == "linux":
        return (
            "systemctl --user daemon-reload",
            f"systemctl --user enable --now {paths.name}",
            'loginctl enable-linger "$USER"   # optional: keep it running while logged out',
        )
    return (f"launchctl bootstrap gui/$(id -u) {shlex.quote(str(paths.unit))}",)


def install(home: Home, settings: Settings, platform: str) -> ServiceResult:
    """Write the unit and the environment file (never overwritten); enable nothing."""
    if not home.root.is_dir():
        raise UsageError(f"no home at {home.root}")
    if "\n" in str(home.root) or "\r" in str(home.root):
        # A unit file is line-based: the rest of the path would become a line of its own.
        raise UsageError(f"the home's path has a newline; a service cannot name it: {home.root!r}")
    paths = service_paths(home, platform)
    text = (
        systemd_unit(home, paths, settings) if platform == "linux" else launchd_plist(home, paths)
    )
    written: list[str] = []
    kept: list[str] = []
    atomic_write(paths.unit, text)
    written.append(str(paths.unit))
    if paths.env_file.exists():
        kept.append(str(paths.env_file))
    else:
        paths.env_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(env_file_text(home, settings))
        written.append(str(paths.env_file))
    if platform == "macos":
        Path(paths.log).parent.mkdir(parents=True, exist_ok=True)
    return ServiceResult(paths, tuple(written), tuple(kept), next_steps=enable_steps(paths))


def uninstall(home: Home, platform: str) -> ServiceResult:
    """Remove the unit (the environment file is the user's and stays)."""
    paths = service_paths(home, platform)
    removed: list[str] = []
    steps: tuple[str, ...] = ()
    if paths.unit.exists():
        paths.unit.unlink()
        removed.append(str(paths.unit))
        steps = (
            (f"systemctl --user disable --now {paths.name}", "systemctl --user daemon-reload")
            if platform == "linux"
            else (f"launchctl bootout gui/$(id -u)/{paths.name}",)
        )
    return ServiceResult(
        paths, removed=tuple(removed), kept=(str(paths.env_file),), next_steps=steps
    )


def status(home: Home, platform: str) -> ServiceResult:
    paths = service_paths(home, platform)
    state = {"installed": "yes" if paths.unit.exists() else "no"}
    if platform == "linux" and shutil.which("systemctl"):
        for what in ("is-enabled", "is-active"):
            state[what.removeprefix("is-")] = _ask(["systemctl", "--user", what, paths.name])
    elif platform == "macos" and shutil.which("launchctl"):
        state["loaded"] = _ask(["launchctl", "list", paths.name])
    return ServiceResult(paths, state=state)


def _ask(argv: list[str]) -> str:
    """A service manager's one-word answer, or why there is none (best effort)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({argv[0]} did not answer: {exc})"
    answer = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return answer[0] if answer else f"exit {done.returncode}"
