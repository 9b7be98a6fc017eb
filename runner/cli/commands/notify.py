from __future__ import annotations

import sys

import click

from runner.cli.complete import complete_target
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice
from runner.deliver.notify import send_test


@click.command("notify")
@click.argument("target", shell_complete=complete_target)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, target: str, as_json: bool) -> None:
    """Send a test notification to a target of runner.yaml."""
    sent = send_test(ctx.home, ctx.settings, target, ctx.clock)
    if as_json:
        emit_json({"target": sent.target, "ok": sent.ok, "error": sent.error})
    elif sent.ok:
        click.echo(f"{target}: sent ({sent.seconds:.2f} s)")
    else:
        notice(f"runner: {target}: not sent: {sent.error}")
    if not sent.ok:
        sys.exit(1)
