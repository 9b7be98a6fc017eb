from __future__ import annotations

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice, table, tokens_text
from runner.listing import list_tasks


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, as_json: bool) -> None:
    """Tasks with status, occurrence, last run and token totals."""
    result = list_tasks(ctx.home, ctx.clock, ctx.settings)
    for problem in result.problems:
        notice(f"warning: {problem}")
    if as_json:
        emit_json(
            {
                "home": str(ctx.home.root),
                "watch": {"running": result.watch_pid is not None, "pid": result.watch_pid},
                "tasks": [row.to_json() for row in result.rows],
                "delivery": result.delivery,
                "today": result.spend.to_json() if result.spend else None,
            }
        )
        return
    rows = [
        [
            row.id,
            row.status,
            row.occurrence or "-",
            row.last_run or "-",
            tokens_text(row.tokens),
            row.title,
        ]
        for row in result.rows
    ]
    if rows:
        click.echo(table(rows, ["TASK", "STATUS", "OCCURRENCE", "LAST RUN", "TOKENS", "TITLE"]))
    else:
        notice(f"no tasks in {ctx.home.tasks}")
    for name, entry in sorted(result.delivery.items()):
        if entry.get("last_error"):
            at = entry.get("last_error_at")
            notice(f"delivery: {name}: last error at {at}: {entry['last_error']}")
    if result.spend is not None:
        spend = result.spend
        cap = f" of {spend.cap:,} (brain.daily_tokens)" if spend.cap is not None else ""
        over = "; over the cap: runs fail with error budget" if spend.exceeded else ""
        notice(f"today: {spend.tokens:,} tokens{cap}{over}")
    if result.watch_pid is not None:
        notice(f"watch: running (pid {result.watch_pid})")
    else:
        notice("watch: not running")
