from __future__ import annotations

import click

from runner.cli.complete import complete_target
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json
from runner.deliver.notify import send_test
from runner.errors import WorkFailed


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
    if not sent.ok:
        raise WorkFailed(f"{target}: not sent: {sent.error}")
