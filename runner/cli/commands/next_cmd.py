from __future__ import annotations

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice, table
from runner.schedule.agenda import upcoming


@click.command("next")
@click.option(
    "--days",
    type=click.FloatRange(min=0, max=3660),
    default=7.0,
    show_default=True,
    help="How many days ahead.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, days: float, as_json: bool) -> None:
    """Upcoming occurrences, like an agenda."""
    agenda = upcoming(ctx.home, ctx.settings, ctx.clock.now(), days)
    for problem in agenda.problems:
        notice(f"warning: {problem}")
    if as_json:
        emit_json(agenda.to_json())
        return
    rows = [
        [
            row.when.strftime("%a %Y-%m-%d")
            + ("  all-day" if row.all_day else row.when.strftime("  %H:%M")),
            row.title or "-",
            row.calendar,
            row.series_key,
        ]
        for row in agenda.rows
    ]
    if rows:
        click.echo(table(rows, ["WHEN", "TITLE", "CALENDAR", "SERIES"]))
    else:
        notice(f"nothing in the next {days:g} day(s)")
