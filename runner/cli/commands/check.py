from __future__ import annotations

import sys

import click

from runner.check import check_home
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, as_json: bool) -> None:
    """Validate settings, every task file and calendar file."""
    result = check_home(ctx.home)
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "checked": result.checked,
                "problems": [
                    {"path": p.path, "line": p.line, "message": p.message} for p in result.problems
                ],
            }
        )
    else:
        for problem in result.problems:
            click.echo(str(problem))
        files = "file" if result.checked == 1 else "files"
        notice(f"checked {result.checked} {files}: {len(result.problems)} problem(s)")
    if not result.ok:
        sys.exit(1)
