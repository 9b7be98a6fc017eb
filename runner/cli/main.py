"""The command line: a thin shell. Each command parses, calls one domain function and
renders its result. Errors are the project's own types, mapped to exit codes here.
"""

from __future__ import annotations

import gc
import logging
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import click

from runner import __version__
from runner.cli import render
from runner.cli.commands import COMMANDS
from runner.cli.context import Context
from runner.errors import RunnerError, UsageError
from runner.home import resolve_home


class RunnerGroup(click.Group):
    """Maps the project's errors to messages and exit codes; no tracebacks."""

    # Commands are imported only when they run (or for --help): `runner run` then pays
    # for no other command's imports. The table is runner.cli.commands.COMMANDS.
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            self.add_command(import_module(f"runner.cli.commands.{module}").command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            if _debugging(ctx):
                raise
            if exc.message:
                render.notice(f"runner: {exc.message}")
            sys.exit(exc.exit_code)
        except OSError as exc:
            # A full disk or a permission problem: say which file, not a traceback.
            if _debugging(ctx):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            render.notice(f"runner: {where}{exc.strerror or exc}")
            sys.exit(1)


def _debugging(ctx: click.Context) -> bool:
    obj = ctx.find_object(Context)
    return obj is not None and obj.debug


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        return prefix + record.getMessage()


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    root = logging.getLogger("runner")
    root.handlers[:] = [handler]
    # What a person should hear is an event (runner.events); the logger is for --debug.
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="The home folder (default: $RUNNER_HOME, else the current directory).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="runner")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, debug: bool) -> None:
    """A calendar-driven, local-first agent runner."""
    _setup_logging(debug)
    resolved = resolve_home(home)
    ctx.obj = Context(resolved, debug)
    if ctx.invoked_subcommand not in (None, "init") and not resolved.root.is_dir():
        # A typo in --home must not look like an empty home that succeeded.
        raise UsageError(f"no home at {resolved.root} (create one with `runner init`)")


def main() -> None:
    try:
        cli(prog_name="runner")
    finally:
        # Every file is written and synced by now. Interpreter teardown would run
        # full garbage collections over whatever was imported (~0.3 s after the
        # anthropic SDK); frozen objects are skipped by them, and still freed.
        gc.freeze()
