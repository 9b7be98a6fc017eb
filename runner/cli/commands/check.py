from __future__ import annotations

import contextlib
from pathlib import Path

import click

from runner.check import check_home
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice
from runner.errors import AlreadyReported, Problem


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--format",
    "style",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="Problems as `path:line: message`, or as GitHub Actions annotations.",
)
@pass_ctx
def command(ctx: Context, as_json: bool, style: str) -> None:
    """Validate settings, every task file and calendar file."""
    result = check_home(ctx.home)
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "checked": result.checked,
                "problems": [
                    {"path": p.path, "line": p.line, "message": p.message} for p in result.problems
                ],
                "warnings": [
                    {"path": p.path, "line": p.line, "message": p.message} for p in result.warnings
                ],
            }
        )
    else:
        for problem in result.problems:
            click.echo(github_annotation(problem) if style == "github" else str(problem))
        for warning in result.warnings:
            if style == "github":
                click.echo(github_annotation(warning).replace("::error ", "::warning ", 1))
            else:
                notice(f"warning: {warning}")
        files = "file" if result.checked == 1 else "files"
        notice(f"checked {result.checked} {files}: {len(result.problems)} problem(s)")
    if not result.ok:
        raise AlreadyReported()


def github_annotation(problem: Problem) -> str:
    """`::error file=…,line=…::message`, escaped as GitHub's workflow commands need.

    The path is relative to the current folder when inside it (a repository checkout
    in CI), so the annotation lands on the file in the pull request.
    """
    path = Path(problem.path)
    with contextlib.suppress(ValueError):
        path = path.resolve().relative_to(Path.cwd().resolve())
    props = f"file={_escape(str(path), True)}"
    if problem.line is not None:
        props += f",line={problem.line}"
    return f"::error {props}::{_escape(problem.message, False)}"


def _escape(text: str, property_value: bool) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text
