from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice

if TYPE_CHECKING:
    from runner.calendars.sync import CalendarSyncResult

# A first sync of more items than this reports progress on stderr.
PROGRESS_FROM = 200


@click.command("sync")
@click.option("--force", is_flag=True, help="Apply an answer that empties a calendar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, force: bool, as_json: bool) -> None:
    """Pull every CalDAV calendar into calendars/<name>/ (incremental)."""
    # Imported here: caldav and its HTTP stack cost ~0.15 s, which no other command pays.
    from runner.calendars.sync import sync_all

    def progress(name: str, done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            notice(f"{name}: {done}/{total}")

    result = sync_all(ctx.home, ctx.settings, force=force, progress=progress)
    if as_json:
        emit_json(result.to_json())
    else:
        for cal in result.calendars:
            if cal.ok:
                click.echo(_summary(cal))
        if not result.calendars:
            notice("no CalDAV calendars in runner.yaml (calendars with a url)")
    for cal in result.calendars:
        if not cal.ok:
            notice(f"runner: sync {cal.name} ({cal.url}): {cal.error}")
    if not result.ok:
        sys.exit(1)


def _summary(cal: CalendarSyncResult) -> str:
    return (
        f"{cal.name}: {cal.added} added, {cal.changed} changed, {cal.deleted} deleted, "
        f"{cal.unchanged} unchanged ({cal.requests} request{'' if cal.requests == 1 else 's'}, "
        f"{cal.mode})"
    )
