from __future__ import annotations

import click

from runner.brain.registry import make_brain
from runner.cli.context import Context, pass_ctx
from runner.cli.events_view import EventView
from runner.cli.render import emit_json, notice
from runner.errors import AlreadyReported
from runner.run.tick import tick


@click.command("tick")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, as_json: bool) -> None:
    """One pass: every occurrence due by now gets its task and runs; then exit."""
    settings = ctx.settings
    brain = make_brain(settings.brain, home=ctx.home.root)
    # The pass's events as lines on stderr; with --json the one document says it all.
    view = None if as_json else EventView(ctx.clock, as_json=False, stamped=False)
    if view is not None:
        notice(f"brain: {brain.name}")
    result = tick(ctx.home, settings, brain, ctx.clock, on_event=view)
    if view is not None:
        view.end()
    else:  # the document lists them too; stderr says so as a person would see it
        for problem in result.problems:
            notice(f"warning: {problem}")
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "counts": result.counts,
                "runs": [
                    {
                        "task": o.task_id,
                        "key": o.key,
                        "status": o.status,
                        "error": o.record.error,
                        "usage": o.record.usage.to_dict(),
                    }
                    for o in result.outcomes
                ],
                "skipped": list(result.skipped),
                "cancelled": list(result.cancelled),
                "problems": [
                    {"path": p.path, "line": p.line, "message": p.message} for p in result.problems
                ],
            }
        )
    else:
        c = result.counts
        notice(
            f"tick: {c['completed']} completed, {c['failed']} failed, "
            f"{c['skipped']} skipped, {c['cancelled']} cancelled"
        )
    if not result.ok:
        raise AlreadyReported()  # the failed runs are in the lines or the document
