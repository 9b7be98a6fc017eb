"""The watch loop's decisions, in-process, on a FakeClock: no sleeping, no threads.

A Harness drives WatchLoop.step() the way the real loop does (step, then wait the
nap it asked for) but advances the fake clock instead of waiting, and runs each
submitted series at once with the real tick.run_series, the real executor and the
offline brain, on real files in a tmp home.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.brain.offline import OfflineBrain
from runner.clock import local_zone, parse_utc_iso, utc_iso
from runner.events import Event
from runner.home import Home
from runner.keys import series_key
from runner.run.plan import SeriesWork
from runner.run.series import run_series
from runner.schedule import expand as schedule
from runner.schedule.cache import CalendarCache
from runner.schedule.expand import occurrences_between
from runner.settings import CatchUp, Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.tasks.occurrence import find_or_create
from runner.watch.daemon import run_work
from runner.watch.loop import MAX_NAP, WatchLoop
from tests.fakes import FakeClock, calendar_text, vevent


def ics(
    uid: str, start: str, rrule: str | None = None, tzid: str | None = None, **extra: str
) -> str:
    description = extra.get("description", "Say hello.")
    return calendar_text(
        vevent(uid, start, extra.get("summary"), description=description, rrule=rrule, tzid=tzid)
    )


def write_ics(home: Home, name: str, text: str, calendar: str = "agent") -> Path:
    path = home.calendars / calendar / f"{name}.ics"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class Harness:
    def __init__(self, home: Home, settings: Settings, start: datetime) -> None:
        self.home = home
        self.settings = settings
        self.clock = FakeClock(start)
        self.brain = OfflineBrain()
        self.events: list[tuple[str, dict[str, Any], datetime]] = []
        self.naps: list[float] = []
        self.loop = WatchLoop(
            home, settings, self.clock, CalendarCache(home), self.submit, self.emit
        )

    def emit(self, event: Event) -> None:
        self.events.append((event.KIND, event.to_json(), self.clock.now()))

    def submit(self, work: SeriesWork) -> bool:  # as Watch's workers do
        failed = run_work(self.home, self.settings, work, self.brain, self.clock, self.emit)
        self.loop.run_finished(work.key, failed)
        return True

    def run_for(self, seconds: float) -> None:
        """Step and 'wait' as the real loop does, for `seconds` of monotonic time."""
        end = self.clock.monotonic() + seconds
        idle_steps = 0
        while self.clock.monotonic() < end:
            nap = self.loop.step()
            self.naps.append(nap)
            assert 0 <= nap <= MAX_NAP
            if nap == 0:
                idle_steps += 1
                assert idle_steps < 5, "the loop asked for no wait over and over: a busy loop"
                continue
            idle_steps = 0
            self.clock.advance(min(nap, end - self.clock.monotonic()))

    def skip_to(self, moment: datetime) -> None:
        """Let hours pass quickly: as if every nap had been taken (wall and monotonic
        move together, so the loop sees no gap). Stops 3 s short of `moment`."""
        self.loop.step()
        seconds = (moment - self.clock.now()).total_seconds() - 3
        if seconds > 0:
            self.clock.advance(seconds)
        self.run_for(6)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data, _ in self.events if k == kind]

    def fired(self) -> list[str]:
        return [str(d["task"]) for d in self.kinds("fired")]

    def fire_delays(self) -> list[float]:
        return [
            (when - parse_utc_iso(str(data["fire_at"]))).total_seconds()
            for kind, data, when in self.events
            if kind == "fired"
        ]

    def statuses(self, key: str) -> dict[str, str]:
        out: dict[str, str] = {}
        folder = self.home.tasks / key
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("status:"):
                    out[path.stem] = line.split(":", 1)[1].strip()
        return out

    def log_tasks(self, key: str) -> list[str]:
        path = self.home.logs / f"{key}.jsonl"
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["task"] for line in lines]


KEY = series_key("hourly@test")


def hourly(home: Home, first: str) -> None:
    write_ics(home, "hourly", ics("hourly@test", first, "FREQ=HOURLY"))


def test_fires_within_a_second_and_plans_only_when_something_is_due(home: Home) -> None:
    hourly(home, "20261126T083000Z")
    once = series_key("once@test")
    write_ics(home, "once", ics("once@test", "20261126T083012Z"))
    h = Harness(home, Settings(), at("2026-11-26T08:29:30+00:00"))
    h.run_for(2 * 3600 + 60)
    assert h.fired() == [
        f"{KEY}/20261126T083000Z",
        f"{once}/20261126T083012Z",
        f"{KEY}/20261126T093000Z",
        f"{KEY}/20261126T103000Z",
    ]
    assert all(0 <= d < 1 for d in h.fire_delays())
    assert max(h.naps) <= MAX_NAP
    # Thousands of wake-ups, but a plan only per due time, finished run and rescan.
    assert len(h.naps) > 3000
    assert h.loop.plans < 60


def test_start_runs_the_latest_missed_and_skips_the_rest_within_grace(home: Home) -> None:
    hourly(home, "20261125T000000Z")
    h = Harness(home, Settings(), at("2026-11-26T08:29:30+00:00"))
    h.run_for(1)
    assert h.fired() == [f"{KEY}/20261126T080000Z"]
    statuses = h.statuses(KEY)
    # Within grace (12 h: since 20:29:30): 21:00 … 08:00. Older ones get no file.
    assert sorted(statuses) == [f"20261125T{n:02d}0000Z" for n in range(21, 24)] + [
        f"20261126T{n:02d}0000Z" for n in range(9)
    ]
    assert statuses.pop("20261126T080000Z") == "completed"
    assert set(statuses.values()) == {"skipped"}


def suspend(h: Harness, seconds: float) -> datetime:
    """The machine sleeps in the middle of a nap: wall time moves, monotonic does not.
    Returns the wall time at which the machine woke up."""
    nap = h.loop.step()
    h.clock.jump(seconds)
    woke = h.clock.now()
    h.clock.advance(nap)  # the rest of the nap, on the monotonic clock
    return woke


@pytest.mark.parametrize(
    ("policy", "wake_at", "fired", "skipped"),
    [
        ("latest", "11:30:30", ["110000"], ["090000", "100000"]),
        ("all", "11:30:30", ["090000", "100000", "110000"], []),
        ("none", "11:00:30", ["110000"], ["090000", "100000"]),
        ("none", "11:05:00", [], ["090000", "100000", "110000"]),
    ],
)
def test_a_suspend_applies_catch_up(
    home: Home, policy: str, wake_at: str, fired: list[str], skipped: list[str]
) -> None:
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(catch_up=CatchUp(policy)), at("2026-11-26T08:30:00+00:00"))
    h.run_for(10)
    assert h.fired() == []
    gap = (at(f"2026-11-26T{wake_at}+00:00") - h.clock.now()).total_seconds()
    woke = suspend(h, gap)
    h.run_for(10)
    clock_events = h.kinds("clock")
    assert len(clock_events) == 1 and clock_events[0]["skew"] == pytest.approx(gap, abs=0.01)
    assert h.fired() == [f"{KEY}/20261126T{t}Z" for t in fired]
    statuses = h.statuses(KEY)
    assert {s for s, v in statuses.items() if v == "skipped"} == {f"20261126T{t}Z" for t in skipped}
    assert {s for s, v in statuses.items() if v == "completed"} == {f"20261126T{t}Z" for t in fired}
    # After the wake, the loop acted within five seconds (it wakes every MAX_NAP).
    acted = [when for kind, _, when in h.events if kind in ("fired", "skipped")]
    assert acted and all((when - woke).total_seconds() < 5 for when in acted)


def test_a_long_suspend_passes_over_what_is_older_than_grace(home: Home) -> None:
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(catch_up=CatchUp.ALL, grace=7200), at("2026-11-26T08:30:00+00:00"))
    h.run_for(5)
    suspend(h, 24 * 3600)  # wakes at 08:30:05 the next day
    h.run_for(10)
    # Only 06:30:05 … 08:30:05 is within grace: 07:00 and 08:00 run, nothing older
    # gets a file.
    assert h.fired() == [f"{KEY}/20261127T070000Z", f"{KEY}/20261127T080000Z"]
    assert sorted(h.statuses(KEY)) == ["20261127T070000Z", "20261127T080000Z"]


def test_a_clock_set_back_never_runs_an_occurrence_twice(home: Home) -> None:
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(), at("2026-11-26T08:59:50+00:00"))
    h.run_for(15)
    assert h.fired() == [f"{KEY}/20261126T090000Z"]
    h.clock.jump(-3600)  # 08:00:05 again
    h.run_for(2 * 3600 + 10)  # to 10:00:15 on the wall clock
    assert h.kinds("clock")[0]["skew"] == pytest.approx(-3600, abs=0.01)
    assert h.fired() == [f"{KEY}/20261126T090000Z", f"{KEY}/20261126T100000Z"]
    assert h.log_tasks(KEY) == [f"{KEY}/20261126T090000Z", f"{KEY}/20261126T100000Z"]
    assert all(0 <= d < 1 for d in h.fire_delays())


def test_a_clock_set_forward_while_awake_fires_what_it_passed(home: Home) -> None:
    hourly(home, "20261126T090000Z")
    once = series_key("once@test")
    write_ics(home, "once", ics("once@test", "20261126T090500Z"))
    h = Harness(home, Settings(), at("2026-11-26T08:59:50+00:00"))
    h.run_for(15)
    h.clock.jump(600)  # NTP or a person: 09:10:05
    jumped = h.clock.now()
    h.run_for(3)
    assert h.fired() == [f"{KEY}/20261126T090000Z", f"{once}/20261126T090500Z"]
    late = [when for kind, _, when in h.events if kind == "fired"][-1]
    assert (late - jumped).total_seconds() < 5


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    local_zone.cache_clear()
    yield
    local_zone.cache_clear()


@pytest.mark.parametrize("floating", [False, True])
def test_dst_in_a_non_utc_zone(home: Home, berlin: None, floating: bool) -> None:
    # Daily at 09:00 Berlin time: 08:00Z in winter, 07:00Z after 2026-03-29 02:00.
    tzid = None if floating else "Europe/Berlin"
    write_ics(home, "daily", ics("daily@test", "20260326T090000", "FREQ=DAILY", tzid=tzid))
    key = series_key("daily@test")
    h = Harness(home, Settings(), at("2026-03-27T07:59:50+00:00"))
    h.run_for(15)
    for moment in ("2026-03-28T08:00:00", "2026-03-29T07:00:00", "2026-03-30T07:00:00"):
        # The loop's own idea of the next due time already knows the zone's rules.
        assert h.loop.next_due == at(moment + "+00:00")
        h.skip_to(at(moment + "+00:00"))
    # A floating time's stamp is its local wall time (no Z); a TZID time's is UTC.
    stamps = (
        ["20260327T090000", "20260328T090000", "20260329T090000", "20260330T090000"]
        if floating
        else ["20260327T080000Z", "20260328T080000Z", "20260329T070000Z", "20260330T070000Z"]
    )
    assert h.fired() == [f"{key}/{stamp}" for stamp in stamps]
    fired_at = [utc_iso(when) for kind, _, when in h.events if kind == "fired"]
    assert [t[:19] for t in fired_at] == [
        "2026-03-27T08:00:00",
        "2026-03-28T08:00:00",
        "2026-03-29T07:00:00",
        "2026-03-30T07:00:00",
    ]
    assert all(0 <= d < 1 for d in h.fire_delays())


def test_hundreds_of_series_each_fire_once_on_time(home: Home) -> None:
    base = at("2026-11-26T09:00:00+00:00")
    count, moments = 300, 12
    for n in range(count):
        # 25 series at each of 12 moments, 7 s apart, several per file.
        moment = base + timedelta(seconds=7 * (n % moments))
        start = moment.strftime("%Y%m%dT%H%M%SZ")
        write_ics(home, f"s{n:03d}", ics(f"series-{n}@test", start, "FREQ=DAILY"))
    h = Harness(home, Settings(), base - timedelta(seconds=10))
    h.run_for(100)
    fired = h.fired()
    assert len(fired) == count and len(set(fired)) == count
    assert all(0 <= d < 1 for d in h.fire_delays())
    # Fifty wake-ups and a plan per due moment (and the first scan), not per run.
    assert h.loop.plans == moments + 1
    # A day later each fires once more, and nothing ran twice.
    h.skip_to(base + timedelta(days=1, seconds=7 * moments))
    assert len(h.fired()) == 2 * count and len(set(h.fired())) == 2 * count


def test_a_series_still_running_is_not_planned_on_every_wake(home: Home) -> None:
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(), at("2026-11-26T08:59:59+00:00"))
    handed: list[SeriesWork] = []

    def hold(work: SeriesWork) -> bool:  # like the pool: busy until finished
        if any(w.key == work.key for w in handed):
            return False
        handed.append(work)
        return True

    h.loop.submit = hold
    h.run_for(60)
    assert [w.key for w in handed] == [KEY]
    plans = h.loop.plans
    h.run_for(60)
    assert h.loop.plans == plans  # nothing new is due while the run is in flight
    # 10:00 comes due while 09:00 still runs: it waits for the series to be free.
    h.skip_to(at("2026-11-26T10:00:00+00:00"))
    assert [w.key for w in handed] == [KEY]
    work = handed.pop()
    run_series(home, h.settings, work, h.brain, h.clock, h.emit)
    h.loop.run_finished(KEY)
    h.run_for(1)
    assert [w.key for w in handed] == [KEY]  # planned again as soon as it was free
    run_series(home, h.settings, handed.pop(), h.brain, h.clock, h.emit)
    assert h.fired() == [f"{KEY}/20261126T090000Z", f"{KEY}/20261126T100000Z"]


def test_a_run_ending_while_its_series_is_refused_is_not_lost(home: Home) -> None:
    # The worker reports the end of a run (another thread) right after the pool refused
    # the series' new work and before the loop noted it as deferred: the report must
    # wait for the note, or the due occurrence waits for the next rescan.
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(), at("2026-11-26T08:59:59+00:00"))
    finisher: list[threading.Thread] = []

    def busy(work: SeriesWork) -> bool:
        thread = threading.Thread(target=h.loop.run_finished, args=(work.key,))
        finisher.append(thread)
        thread.start()
        thread.join(0.2)  # without the loop's lock the report lands here, too early
        return False

    h.loop.submit = busy
    h.run_for(2)
    assert finisher
    finisher[0].join(5)
    h.loop.submit = h.submit
    h.run_for(1)
    assert h.fired() == [f"{KEY}/20261126T090000Z"]


def test_a_problem_fixed_and_back_is_reported_again(home: Home) -> None:
    hourly(home, "20261126T090000Z")
    broken = write_ics(home, "broken", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
    h = Harness(home, Settings(), at("2026-11-26T08:00:00+00:00"))
    h.run_for(1)
    assert len(h.kinds("problem")) == 1
    h.run_for(5)
    assert len(h.kinds("problem")) == 1  # once, not on every plan
    broken.unlink()
    h.loop.rescan_soon()
    h.run_for(1)
    broken.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", encoding="utf-8")
    h.loop.rescan_soon()
    h.run_for(1)
    assert len(h.kinds("problem")) == 2


def test_a_run_left_running_by_a_crash_is_retried_on_time(home: Home) -> None:
    # The watch was killed mid-run; the restarted loop plans the task as `running`,
    # recovers it as interrupted under the series lock, and must then plan its retry
    # (30 s ± 20 % later), not leave it to the next rescan minutes away.
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(), at("2026-11-26T09:00:02+00:00"))
    calendars = CalendarCache(home).refresh(h.settings)
    occurrence = occurrences_between(calendars, at("2026-11-26T09:00:00+00:00"), h.clock.now())[0]
    task = find_or_create(home, occurrence, h.clock)
    started = utc_iso(h.clock.now())
    tasks.write_state(
        task, replace(task.state, status=TaskStatus.RUNNING, attempts=1, started=started)
    )
    handed: list[SeriesWork] = []

    def hand(work: SeriesWork) -> bool:  # a worker takes it, later
        handed.append(work)
        return True

    h.loop.submit = hand
    h.loop.step()
    assert [w.key for w in handed] == [KEY]
    # The worker recovers it (the plan has already been made without it).
    failed = run_work(home, h.settings, handed.pop(), h.brain, h.clock, h.emit)
    h.loop.run_finished(KEY, failed)
    assert h.fired() == []
    h.loop.submit = h.submit
    h.run_for(60)
    assert h.fired() == [task.id]
    assert h.log_tasks(KEY) == [task.id, task.id]  # interrupted, then the retry
    assert h.statuses(KEY) == {"20261126T090000Z": "completed"}


def test_a_series_with_too_many_occurrences_is_skipped_not_stalling_the_loop(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FREQ=SECONDLY by mistake is a million occurrences per expansion: minutes of
    # work for every reader. Over the cap the series is a problem; the others fire.
    monkeypatch.setattr(schedule, "MAX_PER_SERIES", 1000, raising=False)
    write_ics(home, "flood", ics("flood@test", "20261126T080000Z", "FREQ=MINUTELY"))
    hourly(home, "20261126T090000Z")
    h = Harness(home, Settings(), at("2026-11-26T08:59:58+00:00"))
    h.run_for(5)
    assert h.fired() == [f"{KEY}/20261126T090000Z"]
    [problem] = h.kinds("problem")
    # Named by its file and line (the RRULE), not by echoing the UID.
    assert "more than 1000 in" in problem["message"] and "flood@test" not in problem["message"]
    assert str(problem["message"]).startswith(f"{home.calendars / 'agent' / 'flood.ics'}:11: ")
