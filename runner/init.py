"""`runner init`: lay out a home. Never overwrites a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.fsutil import atomic_write
from runner.home import Home

SETTINGS_TEMPLATE = """\
# runner.yaml: settings for this home. Every setting has a default; delete what you
# do not change. Secrets never go here (use password_env or password_cmd).

brain:
  provider: auto            # auto: anthropic when ANTHROPIC_API_KEY is set, else offline
  # model: claude-sonnet-5-5
  # max_tokens: 4096
  # timeout: 120s

# calendars:                # default: every folder under calendars/ is a local calendar
#   - name: agent
#     url: https://dav.example.com/calendars/me/agent/
#     username: me
#     password_env: CALDAV_PASSWORD   # or password_cmd: "pass show caldav"

# sync_every: 5m
# catch_up: latest          # latest | all | none: occurrences missed while off
# grace: 12h                # older missed occurrences are skipped
# all_day_at: "09:00"       # local time at which all-day events fire
# retries: 2
# workers: 2
# shutdown_grace: 10s
# compression:
#   max_tokens: 50000
#   max_executions: 20
#   keep_recent: 5
"""

EXAMPLE_TASK = """\
title: Hello
instructions: |
  Say hello, and tell me what you remember from our earlier runs.
"""

GITIGNORE = """\
# machine-local runtime state (locks, claims, sync tokens, caches)
.runner/
"""


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: tuple[str, ...]
    kept: tuple[str, ...]


def init_home(home: Home) -> InitResult:
    created: list[str] = []
    kept: list[str] = []
    home.root.mkdir(parents=True, exist_ok=True)
    for folder in (home.tasks, home.calendars, home.logs, home.state):
        if folder.is_dir():
            kept.append(folder.name + "/")
        else:
            folder.mkdir(parents=True)
            created.append(folder.name + "/")
    files = {
        home.settings_file: SETTINGS_TEMPLATE,
        home.root / ".gitignore": GITIGNORE,
        home.tasks / "hello.yaml": EXAMPLE_TASK,
    }
    for path, text in files.items():
        name = str(path.relative_to(home.root))
        if path.exists():
            kept.append(name)
        else:
            atomic_write(path, text)
            created.append(name)
    return InitResult(home.root, tuple(created), tuple(kept))
