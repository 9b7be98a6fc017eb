from __future__ import annotations

import click

from runner.brain.registry import make_brain
from runner.cli.complete import complete_key
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice
from runner.errors import WorkFailed
from runner.logs.compression import compress


@click.command("compress")
@click.argument("key", shell_complete=complete_key)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, key: str, as_json: bool) -> None:
    """Compress one log now: older executions into the summary header."""
    settings = ctx.settings
    result = compress(
        ctx.home,
        settings,
        key,
        make_brain(settings.brain, home=ctx.home.root),
        ctx.clock,
        on_wait=notice,
    )
    if as_json:
        emit_json(result.to_json())
    elif result.status == "compressed":
        before = f"; context was {result.context_tokens} tokens" if result.context_tokens else ""
        click.echo(
            f"{key}: {result.summarised} execution(s) folded into the summary header "
            f"(it covers {result.covers}); {result.kept} kept in full{before}"
        )
    elif result.status == "nothing":
        click.echo(
            f"{key}: nothing to compress ({result.executions} execution(s); "
            f"keep_recent is {settings.compression.keep_recent})"
        )
    if result.status == "failed" and result.summarised:
        raise WorkFailed(
            f"compressing {key} stopped after folding {result.summarised} execution(s) "
            f"(the summary header covers {result.covers}): {result.error}"
        )
    if result.status == "failed":
        raise WorkFailed(f"compressing {key} failed, the log is unchanged: {result.error}")
