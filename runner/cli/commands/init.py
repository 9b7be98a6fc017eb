from __future__ import annotations

from pathlib import Path

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.render import notice
from runner.home import resolve_home
from runner.init import init_home


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
def command(ctx: Context, directory: Path | None) -> None:
    """Lay out a home (never overwrites a file). DIR wins over --home."""
    home = resolve_home(directory) if directory is not None else ctx.home
    result = init_home(home)
    for name in result.created:
        notice(f"created {name}")
    for name in result.kept:
        notice(f"kept    {name} (exists)")
    click.echo(str(result.root))
