from __future__ import annotations

import sys
from typing import Any

import click

from runner.brain.registry import make_brain
from runner.cli.context import Context, pass_ctx
from runner.cli.render import emit_json, notice, plain, tokens_text
from runner.run.tick import tick


@click.command("tick")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_ctx
def command(ctx: Context, as_json: bool) -> None:
    """One pass: every occurrence due by now gets its task and runs; then exit."""
    settings = ctx.settings
    brain = make_brain(settings.brain, home=ctx.home.root)

    def show(kind: str, data: dict[str, Any]) -> None:
        if kind == "fired":
            notice(f"fired     {data['task']}  {plain(str(data['title']))}")
        elif kind == "finished":
            usage = tokens_text(data.get("usage") or {})
            error = f"  error: {data['error']}" if data.get("error") else ""
            notice(f"{data['status']:<10}{data['task']}  {data['seconds']}s  {usage}{error}")
        elif kind in ("skipped", "cancelled"):
            notice(f"{kind:<10}{data['task']}")
        elif kind == "notice":
            notice(f"warning: {data['message']}")

    def show_notices(kind: str, data: dict[str, Any]) -> None:
        if kind == "notice":
            notice(f"warning: {data['message']}")

    if not as_json:
        notice(f"brain: {brain.name}")
    result = tick(ctx.home, settings, brain, ctx.clock, on_event=show_notices if as_json else show)
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
        sys.exit(1)
