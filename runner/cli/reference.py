"""The command reference (docs/reference.md), generated from the CLI's own help.

`just docs` writes it; tests/test_docs.py fails when the file and the help disagree,
so the reference cannot drift from what `runner --help` says.
"""

from __future__ import annotations

import click

from runner.cli.main import cli

HEADER = """\
# Command reference

Generated from `runner --help` by `just docs`; a test fails when it drifts.
Exit codes: 0 success; 1 the work failed (a task failed, `check` found problems, a
sync failed); 2 bad usage, or the command's own target cannot be loaded.
"""


def _walk(
    group: click.Group, path: list[str], ctx: click.Context
) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None:
            continue
        found.append(([*path, name], command))
        if isinstance(command, click.Group):
            sub = click.Context(command, info_name=name, parent=ctx)
            found.extend(_walk(command, [*path, name], sub))
    return found


def reference() -> str:
    root = click.Context(cli, info_name="runner", terminal_width=88)
    parts = [HEADER, "## runner\n", "```\n" + cli.get_help(root) + "\n```\n"]
    for path, command in _walk(cli, ["runner"], root):
        ctx = root
        for name in path[1:]:
            ctx = click.Context(command, info_name=name, parent=ctx, terminal_width=88)
        parts.append(f"## {' '.join(path)}\n")
        parts.append("```\n" + command.get_help(ctx) + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    click.echo(reference(), nl=False)
