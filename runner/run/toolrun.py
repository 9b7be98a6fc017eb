"""What a run is equipped with before its brain call: the day's budget checked, its
grants decided (tasks/trust.py), its toolset opened, its limits set; and the sink
that journals each finished step (journal.py) before the model hears its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from runner.brain.protocol import BrainRequest
from runner.clock import Clock
from runner.home import Home
from runner.run.budget import check_budget
from runner.run.journal import Journal, journal_path
from runner.settings import Settings
from runner.tasks import files as tasks
from runner.tasks.trust import grants_for
from runner.tools.steps import Step, StepSink
from runner.tools.toolset import Toolset, open_toolset


@dataclass
class StepLog:
    """Journals each step (journal.py: written now, synced in the background), keeps
    it for the record, then shows it. `close` before the record is appended."""

    home: Home
    exec_id: str
    show: StepSink | None = None
    steps: list[Step] = field(default_factory=list)
    journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(journal_path(self.home, self.exec_id))

    def __call__(self, step: Step) -> None:
        if self.journal.closed:
            return  # the run is recorded: a loop left running (a watch shutting down) is not
        # Kept before the journal's write: if that fails, the run fails and its record
        # still lists the call (a file it wrote is no less written).
        self.steps.append(step)
        self.journal.append(step)
        if self.show is not None:
            self.show(step)

    def close(self) -> None:
        """Every step on disk (raises if a sync failed), the journal file released."""
        self.journal.close()


def equip(
    home: Home,
    settings: Settings,
    task: tasks.Task,
    request: BrainRequest,
    sink: StepLog,
    clock: Clock,
    open_tools: bool = True,
) -> tuple[BrainRequest, Toolset | None]:
    """The request with its grants, toolset and limits; raises to fail the run.

    `open_tools=False` for a brain that runs its tools itself (claude-code): it gets
    the grants as data and starts nothing here.
    """
    check_budget(home, settings, clock)
    grants = grants_for(home, settings, task)
    g = grants.tools
    wanted = open_tools and bool(g.read or g.write or g.mcp)  # `shell` is claude-code's own
    toolset = open_toolset(home, grants.tools) if wanted else None
    equipped = replace(
        request,
        grants=grants.tools,
        grants_source=grants.source,
        tools=toolset,
        on_step=sink,
        max_turns=grants.max_turns or settings.brain.max_turns,
        max_run_tokens=grants.max_run_tokens or settings.brain.max_run_tokens,
    )
    return equipped, toolset
