from __future__ import annotations

import click

from runner.brain.registry import make_brain
from runner.cli.complete import complete_task
from runner.cli.context import Context, pass_ctx
from runner.cli.render import TextStream, emit_json, notice, plain
from runner.errors import WorkFailed
from runner.run.executor import run_task
from runner.tasks.files import load_task
from runner.tools.steps import Step, step_notice


@click.command("run")
@click.argument("task_id", metavar="TASK", shell_complete=complete_task)
@click.option("--json", "as_json", is_flag=True, help="Print only the execution record.")
@pass_ctx
def command(ctx: Context, task_id: str, as_json: bool) -> None:
    """Execute one task now, streaming the answer to stdout."""
    settings = ctx.settings
    task = load_task(ctx.home, task_id)  # a task that cannot load: exit 2 before anything
    brain = make_brain(settings.brain, home=ctx.home.root)
    notice(f"brain: {brain.describe(task.model)}")

    stream = TextStream()

    def show_step(step: Step) -> None:
        stream.end_line()  # the answer so far ends its line before the tool line
        notice(plain(step_notice(step)))  # names and paths come from the model

    outcome = run_task(
        ctx.home,
        settings,
        task_id,
        brain,
        ctx.clock,
        on_text=None if as_json else stream,
        on_wait=notice,
        on_step=show_step,
    )
    if as_json:
        emit_json(outcome.record.to_json())
    else:
        stream.end_line()
    if outcome.record.stop_reason == "max_tokens":
        notice("note: the answer stopped at max_tokens (raise it in runner.yaml or the task)")
    if not outcome.ok:
        raise WorkFailed(f"{task_id} failed: {outcome.record.error}")
    notice(f"{task_id}: completed ({outcome.key})")
