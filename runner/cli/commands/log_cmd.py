from __future__ import annotations

import click

from runner.cli.complete import complete_key_or_task
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice, plain, tokens_text
from runner.logs.view import view_log


def turns_note(turns: int | None) -> str:
    return f", {turns} round trips" if turns and turns > 1 else ""


@click.command("log")
@click.argument("key_or_task", metavar="KEY_OR_TASK", shell_complete=complete_key_or_task)
@click.option("--all", "include_archive", is_flag=True, help="Include the archive.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, key_or_task: str, include_archive: bool, as_json: bool) -> None:
    """The summary header and executions of a series."""
    view = view_log(ctx.home, key_or_task, include_archive)
    if as_json:
        emit_json(view.to_json())
        return
    contents = view.contents
    out: list[str] = [f"log {view.key}"]
    if contents.summary:
        s = contents.summary
        out.append(f"── summary ({s.covers} executions, created {s.created or None})")
        out.append(s.text.rstrip())
    for record in contents.executions:
        stop = record.stop_reason
        stop_note = f", stopped: {stop}" if stop and stop != "end_turn" else ""
        out.append(
            f"── {record.started or None}  {record.task or None}  {record.status or None}"
            f"  ({tokens_text(record.usage.to_dict())}{turns_note(record.turns)}{stop_note})"
        )
        first = record.instructions.strip().splitlines()
        if first:
            out.append(f"> {first[0]}")
        out += [f"  {plain(step.line())}" for step in record.steps or ()]  # the model's names
        if record.response:
            out.append(record.response.rstrip())
        if record.error:
            out.append(f"error: {record.error}")
    click.echo("\n".join(line for line in out if line != ""))
    totals = contents.usage_totals()
    notice(f"{len(contents.executions)} execution(s); tokens {tokens_text(totals)}")
