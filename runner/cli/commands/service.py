from __future__ import annotations

import click

from runner import service
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice

_PLATFORM = click.option(
    "--platform",
    type=click.Choice(service.PLATFORMS),
    default=None,
    help="Write for this system instead of the one running (linux: systemd, macos: launchd).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.group("service")
def command() -> None:
    """Run `runner watch` at login (systemd user unit / launchd agent)."""


@command.command("install")
@_PLATFORM
@_JSON
@pass_ctx
def install(ctx: Context, platform: str | None, as_json: bool) -> None:
    """Write the unit and an environment file; enable nothing."""
    result = service.install(ctx.home, ctx.settings, platform or service.this_platform())
    _show(result, as_json)


@command.command("uninstall")
@_PLATFORM
@_JSON
@pass_ctx
def uninstall(ctx: Context, platform: str | None, as_json: bool) -> None:
    """Remove the unit (the environment file stays)."""
    _show(service.uninstall(ctx.home, platform or service.this_platform()), as_json)


@command.command("status")
@_PLATFORM
@_JSON
@pass_ctx
def status(ctx: Context, platform: str | None, as_json: bool) -> None:
    """Whether the unit is installed, enabled and running, and where its log is."""
    _show(service.status(ctx.home, platform or service.this_platform()), as_json)


def _show(result: service.ServiceResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    paths = result.paths
    for path in result.written:
        notice(f"wrote   {path}")
    for path in result.kept:
        notice(f"kept    {path}")
    for path in result.removed:
        notice(f"removed {path}")
    click.echo(f"{paths.name}: {paths.unit}")
    for key, value in result.state.items():
        click.echo(f"  {key}: {value}")
    click.echo(f"  environment: {paths.env_file}")
    click.echo(f"  log: {paths.log}")
    if result.next_steps:
        notice("to apply it, run:")
        for step in result.next_steps:
            notice(f"  {step}")
