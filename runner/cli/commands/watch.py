from __future__ import annotations

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.events_view import EventView
from runner.events import notices_to


@click.command("watch")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per event line.")
@pass_ctx
def command(ctx: Context, as_json: bool) -> None:
    """The daemon: sync on schedule, react to file changes, fire occurrences on time."""
    from runner.watch.daemon import run_watch

    view = EventView(ctx.clock, as_json)
    # Notices from anywhere (a torn log, a recovery, a retry) join the event stream.
    with notices_to(view):
        run_watch(ctx.home, ctx.settings, ctx.clock, view, view.end_of_series)
