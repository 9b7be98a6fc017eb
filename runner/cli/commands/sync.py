from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice
from runner.errors import AlreadyReported, WorkFailed

if TYPE_CHECKING:
    from runner.calendars.sync import CalendarSyncResult

# A first sync of more items than this reports progress on stderr.
PROGRESS_FROM = 200


@click.command("sync")
@click.option("--force", is_flag=True, help="Apply an answer that empties a calendar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--discover",
    "discover_url",
    metavar="URL",
    help="Sync nothing: say what URL is and list the calendars found there.",
)
@click.option("--username", help="With --discover: the login (default: runner.yaml's).")
@click.option("--password-env", metavar="VAR", help="With --discover: the password's variable.")
@pass_ctx
def command(
    ctx: Context,
    force: bool,
    as_json: bool,
    discover_url: str | None,
    username: str | None,
    password_env: str | None,
) -> None:
    """Pull every CalDAV calendar into calendars/<name>/ (incremental)."""
    if discover_url is not None:
        _discover(ctx, discover_url, username, password_env, as_json)
        return
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
        raise AlreadyReported()


def _summary(cal: CalendarSyncResult) -> str:
    return (
        f"{cal.name}: {cal.added} added, {cal.changed} changed, {cal.deleted} deleted, "
        f"{cal.unchanged} unchanged ({cal.requests} request{'' if cal.requests == 1 else 's'}, "
        f"{cal.mode})"
    )


def _discover(
    ctx: Context, url: str, username: str | None, password_env: str | None, as_json: bool
) -> None:
    from runner.calendars.access import RemoteError, public_url
    from runner.calendars.discover import discover_url

    calendars = tuple(ctx.settings.calendars or ())
    try:
        found = discover_url(url, calendars, username, password_env)
    except RemoteError as exc:
        if as_json:
            emit_json({"url": public_url(url), "ok": False, "error": str(exc)})
        raise WorkFailed(f"sync --discover {public_url(url)}: {exc}") from None
    if as_json:
        emit_json({**found.to_json(), "ok": True})
    else:
        notice(found.describe().splitlines()[0])
        for cal in found.calendars:
            click.echo(f"{cal.name}\t{cal.url}")
    if not found.calendars:
        raise AlreadyReported()
