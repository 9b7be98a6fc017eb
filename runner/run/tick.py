"""`runner tick`: one pass over every due occurrence, series by series, then exit.

plan.py decides what is due; series.py runs each series' work under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.brain.protocol import Brain
from runner.clock import Clock
from runner.errors import FileError, Problem
from runner.events import Cancelled, Event, EventSink, ProblemFound, Skipped, notify
from runner.home import Home
from runner.run.delivery import flush_outbox
from runner.run.executor import RunOutcome
from runner.run.plan import plan_due
from runner.run.series import run_series
from runner.schedule.cache import CalendarCache
from runner.settings import Settings


@dataclass(frozen=True)
class TickResult:
    outcomes: tuple[RunOutcome, ...]
    skipped: tuple[str, ...]
    cancelled: tuple[str, ...]
    problems: tuple[Problem, ...]
    write_errors: tuple[Problem, ...] = ()  # also in problems; they fail the tick

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes) and not self.write_errors

    @property
    def counts(self) -> dict[str, int]:
        return {
            "ran": len(self.outcomes),
            "completed": sum(1 for o in self.outcomes if o.ok),
            "failed": sum(1 for o in self.outcomes if not o.ok),
            "skipped": len(self.skipped),
            "cancelled": len(self.cancelled),
            "problems": len(self.problems),
        }


def tick(
    home: Home,
    settings: Settings,
    brain: Brain,
    clock: Clock,
    on_event: EventSink | None = None,
) -> TickResult:
    """One pass: every due occurrence gets its task and runs, series by series."""
    cache = CalendarCache(home, disk=True)
    calendars = cache.refresh(settings)
    problems: list[Problem] = []
    outcomes: list[RunOutcome] = []
    skipped: list[str] = []
    cancelled: list[str] = []
    write_errors: list[Problem] = []

    def sink(event: Event) -> None:
        if isinstance(event, Skipped):
            skipped.append(event.task)
        elif isinstance(event, Cancelled):
            cancelled.append(event.task)
        elif isinstance(event, ProblemFound):
            problems.append(Problem(event.path or "", event.line, event.message))
        if on_event is not None:
            on_event(event)

    def found(problem: Problem) -> None:
        sink(ProblemFound(problem.message, None, problem.path, problem.line))

    planned: list[Problem] = []
    plan = plan_due(home, settings, calendars, clock.now(), planned)
    for problem in [*calendars.problems, *planned]:
        found(problem)
    cache.save()
    for work in plan:
        try:
            outcomes.extend(run_series(home, settings, work, brain, clock, sink))
        except FileError as exc:  # e.g. a log corrupted meanwhile: the other series go on
            found(Problem.from_error(exc))
        except OSError as exc:
            # A full disk or an I/O error: this series stops here (a task it marked
            # `running` is recovered by the next command, which records it as
            # interrupted once it can write), the other series go on, and the tick
            # fails. Nothing half-written stays behind (fsutil cuts a failed append).
            where = exc.filename or str(home.logs / f"{work.key}.jsonl")
            failed = Problem(str(where), None, f"cannot write: {exc.strerror or exc}")
            found(failed)
            write_errors.append(failed)
    flush_outbox(home, settings, clock, notify)  # recovered runs', and what a dead process left
    return TickResult(
        tuple(outcomes), tuple(skipped), tuple(cancelled), tuple(problems), tuple(write_errors)
    )
