"""One module per command; `register` adds them all to the CLI group."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    from . import check, init, list_cmd, log_cmd, run

    for module in (init, check, list_cmd, run, log_cmd):
        group.add_command(module.command)
