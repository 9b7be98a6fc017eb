"""Shell completion: task ids, series keys and notification targets.

click does the shell side (`runner completion bash|zsh|fish` prints the script);
these callbacks list candidates from the home's folders only — a directory listing,
no YAML parsed, no SDK imported — so a Tab press stays instant on a large home.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from runner.home import resolve_home
from runner.keys import is_valid_key

_STAMP = re.compile(r"\d{8}(?:T\d{6}Z?)?")


def _home_root(ctx: click.Context) -> Path:
    option = ctx.find_root().params.get("home")
    return resolve_home(option).root


def task_ids(root: Path) -> list[str]:
    """Hand-written task ids, then runner-written `<series>/<stamp>` ids, newest first."""
    tasks = root / "tasks"
    found: list[str] = []
    series: list[str] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(tasks), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.name.endswith(".yaml") and entry.is_file():
                if is_valid_key(entry.name.removesuffix(".yaml")):  # no newline, no space
                    found.append(entry.name.removesuffix(".yaml"))
            elif entry.is_dir() and is_valid_key(entry.name):
                series.append(entry.name)
    for key in series:
        with contextlib.suppress(OSError):
            stamps = [
                e.name.removesuffix(".yaml")
                for e in os.scandir(tasks / key)
                if _STAMP.fullmatch(e.name.removesuffix(".yaml")) and e.name.endswith(".yaml")
            ]
            found.extend(f"{key}/{s}" for s in sorted(stamps, reverse=True))
    return found


def log_keys(root: Path) -> list[str]:
    keys: set[str] = set()
    for folder in (root / "logs", root / "logs" / "archive"):
        with contextlib.suppress(OSError):
            keys.update(
                e.name.removesuffix(".jsonl")
                for e in os.scandir(folder)
                if e.name.endswith(".jsonl") and is_valid_key(e.name.removesuffix(".jsonl"))
            )
    return sorted(keys)


def notify_targets(root: Path) -> list[str]:
    """Target names under `notify:` in runner.yaml (read as YAML only when asked)."""
    from runner.errors import RunnerError
    from runner.settings import load_settings

    try:
        settings = load_settings(root / "runner.yaml")
    except RunnerError:
        return []
    targets = getattr(settings, "notify", None) or {}
    if isinstance(targets, dict):
        return sorted(str(name) for name in targets)
    return sorted(str(getattr(t, "name", t)) for t in targets)


def _items(candidates: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(c) for c in candidates if c.startswith(incomplete)]


def complete_task(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _items(task_ids(_home_root(ctx)), incomplete)


def complete_key(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _items(log_keys(_home_root(ctx)), incomplete)


def complete_key_or_task(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    root = _home_root(ctx)
    return _items(sorted(set(log_keys(root)) | set(task_ids(root))), incomplete)


def complete_target(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _items(notify_targets(_home_root(ctx)), incomplete)
