"""Planning: which occurrences are due now, and what each series has to do.

`plan_due` decides without writing anything: per series, the occurrences due by now
(fire time within `grace`) that have not run, filtered by `catch_up`, plus due
retries and pending tasks whose occurrence was deleted. Whether an occurrence ran is
the log's answer (claims.py), never the task file's alone. `next_wakeup` says when
the next decision is needed. tick.py carries the plans out under the series locks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from runner import keys
from runner.errors import FileError, Problem
from runner.home import Home
from runner.run import history as claims
from runner.run.history import SeriesBook
from runner.schedule.cache import Calendars
from runner.schedule.expand import occurrences_between
from runner.schedule.occurrence import Occurrence
from runner.settings import CatchUp, Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.tasks.occurrence import occurrence_path

_NONE_WINDOW = timedelta(minutes=1)  # catch_up none: only an occurrence this fresh runs
TINY = timedelta(microseconds=1)
_LOOK_AHEAD = timedelta(days=2)


@dataclass(frozen=True)
class SeriesWork:
    """What one series has to do now, oldest first."""

    key: str
    occurrences: tuple[Occurrence, ...]
    skipped: tuple[Occurrence, ...] = ()  # missed, not run per catch_up: mark skipped
    cancelled: tuple[str, ...] = ()  # task ids of pending tasks whose occurrence is gone


# -- what state is an occurrence in? ------------------------------------------------


class Verdict(StrEnum):
    """Where an occurrence stands."""

    DONE = "done"  # ran, was skipped, or no retry is left
    FRESH = "fresh"  # never ran
    RETRY = "retry"  # failed, and its retry time has come
    WAIT = "wait"  # failed, waiting for its retry time
    RUNNING = "running"  # its task says running (a live run, or a crash to recover)
    BROKEN = "broken"  # its task file does not load


def verdict(
    home: Home,
    settings: Settings,
    book: SeriesBook,
    occurrence: Occurrence,
    now: datetime,
    problems: list[Problem] | None = None,
) -> tuple[Verdict, datetime | None]:
    """(state, retry time if waiting for a retry)."""
    task_id = occurrence.task_id
    if claims.read_claim(home, task_id) is not None:
        return Verdict.DONE, None
    history = book.history(task_id)
    if history.completed:
        return Verdict.DONE, None
    if history.attempts:
        if not history.retryable or history.attempts > settings.retries:
            return Verdict.DONE, None
        retry_at = history.retry_at(task_id)
        if retry_at is None or retry_at <= now:
            return Verdict.RETRY, None
        return Verdict.WAIT, retry_at
    path = occurrence_path(home, occurrence)
    if not path.exists():
        return Verdict.FRESH, None
    try:
        task = tasks.parse_task(home, path)
    except FileError as exc:
        if problems is not None:
            problems.append(Problem.from_error(exc))
        return Verdict.BROKEN, None
    status = task.state.status
    if status in (TaskStatus.COMPLETED, TaskStatus.SKIPPED):
        return Verdict.DONE, None
    if status == TaskStatus.RUNNING:
        return Verdict.RUNNING, None
    return Verdict.FRESH, None  # pending, cancelled (it came back), failed without a record


# -- planning -------------------------------------------------------------------------


def plan_due(
    home: Home,
    settings: Settings,
    calendars: Calendars,
    now: datetime,
    problems: list[Problem] | None = None,
) -> list[SeriesWork]:
    """Per series, what is due now and has not run (no writes)."""
    grace = timedelta(seconds=settings.grace)
    due = occurrences_between(calendars, now - grace, now + TINY)
    by_series: dict[str, list[Occurrence]] = {}
    for occurrence in due:
        by_series.setdefault(occurrence.series_key, []).append(occurrence)
    cancelled = _cancellations(home, settings, calendars, now, problems)
    work: list[SeriesWork] = []
    for key in sorted(set(by_series) | set(cancelled)):
        occurrences = _dedupe(by_series.get(key, []))
        fresh: list[Occurrence] = []
        run: list[Occurrence] = []
        try:
            book = SeriesBook(home, key)
            for occurrence in occurrences:
                state, _ = verdict(home, settings, book, occurrence, now, problems)
                if state == Verdict.FRESH:
                    fresh.append(occurrence)
                elif state in (Verdict.RETRY, Verdict.RUNNING):
                    run.append(occurrence)
        except FileError as exc:  # a corrupt log stops its own series, never the others
            if problems is not None:
                problems.append(Problem.from_error(exc))
            continue
        chosen, skipped = _catch_up(settings.catch_up, fresh, now)
        run.extend(chosen)
        run.sort(key=Occurrence.sort_key)
        if run or skipped or cancelled.get(key):
            work.append(SeriesWork(key, tuple(run), tuple(skipped), tuple(cancelled.get(key, ()))))
    work.sort(key=lambda w: min((o.sort_key() for o in w.occurrences), default=(now, w.key, "")))
    return work


def _dedupe(occurrences: list[Occurrence]) -> list[Occurrence]:
    """One occurrence per stamp (the same UID in two files: the first file wins)."""
    seen: set[str] = set()
    out: list[Occurrence] = []
    for occurrence in occurrences:
        if occurrence.stamp not in seen:
            seen.add(occurrence.stamp)
            out.append(occurrence)
    return out


def _catch_up(
    policy: CatchUp, fresh: list[Occurrence], now: datetime
) -> tuple[list[Occurrence], list[Occurrence]]:
    """(to run, to mark skipped), per SPEC "Scheduling rules"; `fresh` is oldest first."""
    if not fresh:
        return [], []
    if policy == CatchUp.ALL:
        return list(fresh), []
    if policy == CatchUp.NONE:
        recent = [o for o in fresh if o.fire_at > now - _NONE_WINDOW]
        chosen = recent[-1:]
        return chosen, [o for o in fresh if o not in chosen]
    return fresh[-1:], fresh[:-1]  # latest


def _cancellations(
    home: Home,
    settings: Settings,
    calendars: Calendars,
    now: datetime,
    problems: list[Problem] | None,
) -> dict[str, list[str]]:
    """Pending occurrence tasks near now whose occurrence no longer exists."""
    if not home.tasks.is_dir():
        return {}
    grace = timedelta(seconds=settings.grace)
    near_lo, near_hi = now - grace - timedelta(days=1), now + timedelta(days=1)
    candidates: list[tuple[str, Path]] = []
    for entry in os.scandir(home.tasks):
        if not _is_dir(entry) or not keys.is_valid_key(entry.name):
            continue
        try:
            items = list(os.scandir(entry.path))
        except OSError as exc:  # unreadable, or a symlink loop: name it, go on
            if problems is not None:
                problems.append(Problem(entry.path, None, f"cannot list: {exc.strerror}"))
            continue
        for item in items:
            stamp = item.name.removesuffix(".yaml")
            if item.name.startswith(".") or stamp == item.name:
                continue
            moment = _stamp_time(stamp)
            task_id = f"{entry.name}/{stamp}"
            if moment is None or not near_lo <= moment <= near_hi:
                continue
            if claims.read_claim(home, task_id) is None:  # a claim: it ran or was skipped
                candidates.append((task_id, Path(item.path)))
    if not candidates:
        return {}
    # Existence is judged on a wider window, so a slightly moved occurrence stays. The
    # window stays inside schedule.py's expansion horizon, so this costs no expansion.
    wide = timedelta(days=2)
    present = {o.task_id for o in occurrences_between(calendars, near_lo - wide, near_hi + wide)}
    out: dict[str, list[str]] = {}
    for task_id, path in candidates:
        if task_id in present:
            continue
        try:
            task = tasks.parse_task(home, path)
        except FileError as exc:
            if problems is not None:
                problems.append(Problem.from_error(exc))
            continue
        if task.state.status == TaskStatus.PENDING and task.caldav_uid is not None:
            out.setdefault(task_id.split("/")[0], []).append(task_id)
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _stamp_time(stamp: str) -> datetime | None:
    """A stamp as a UTC moment (floating and all-day: as if UTC, close enough here)."""
    for form in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            return datetime.strptime(stamp, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


# -- when to wake ---------------------------------------------------------------------


def next_wakeup(
    home: Home, settings: Settings, calendars: Calendars, now: datetime
) -> datetime | None:
    """The earliest moment after `now` when something becomes due: the next fire time
    within a bounded look-ahead, or the next retry of a failed occurrence."""
    candidates: list[datetime] = []
    upcoming = occurrences_between(calendars, now + TINY, now + _LOOK_AHEAD)
    if upcoming:
        candidates.append(upcoming[0].fire_at)
    grace = timedelta(seconds=settings.grace)
    books: dict[str, SeriesBook] = {}
    for occurrence in occurrences_between(calendars, now - grace, now + TINY):
        if claims.read_claim(home, occurrence.task_id) is not None:
            continue
        try:
            book = books.get(occurrence.series_key)
            if book is None:
                book = books[occurrence.series_key] = SeriesBook(home, occurrence.series_key)
            state, retry_at = verdict(home, settings, book, occurrence, now)
        except FileError:  # a corrupt log: plan_due reports it
            continue
        if (
            state == Verdict.WAIT
            and retry_at is not None
            and retry_at <= occurrence.fire_at + grace
        ):
            candidates.append(retry_at)
    return min(candidates) if candidates else None
