"""One module per command; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

# Command name → its module here. A group that loads lazily (cli.RunnerGroup) imports
# a module only when its command is used; any other group gets them all now.
COMMANDS = {
    "init": "init",
    "check": "check",
    "list": "list_cmd",
    "run": "run",
    "log": "log_cmd",
    "compress": "compress",
    "sync": "sync",
    "watch": "watch",
    "tick": "tick",
    "next": "next_cmd",
}


def register(group: click.Group) -> None:
    from importlib import import_module

    from ..cli import RunnerGroup

    if isinstance(group, RunnerGroup):
        group.lazy_commands.update(COMMANDS)
        return

    for name, module in COMMANDS.items():
        group.add_command(import_module(f"{__name__}.{module}").command, name)
