"""`runner tick`: find-or-create, catch-up, grace, retries, exactly-once (SPEC
"Scheduling rules", "Status"). In-process with a FakeClock over local .ics files;
subprocesses only where several processes are the point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner import keys
from runner.brain.offline import OfflineBrain
from runner.errors import BrainError
from runner.events import Event
from runner.home import Home
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord
from runner.run import history as claims
from runner.run.plan import next_wakeup, plan_due
from runner.run.tick import TickResult, tick
from runner.schedule.cache import load_calendars
from runner.schedule.expand import occurrences_between
from runner.settings import CatchUp, Settings
from runner.tasks import files as tasks
from runner.tasks.files import TaskStatus
from runner.tasks.occurrence import find_or_create
from tests.fakes import FakeClock, RecordingBrain, ics_time, vevent, write_ics

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def event(uid: str, start: datetime, summary: str = "Job", extra: str = "") -> str:
    return vevent(uid, start, summary, extra=extra)


def executions(home: Home, uid: str) -> list[ExecutionRecord]:
    return logs.read_all(home, keys.series_key(uid)).executions


def status_of(home: Home, uid: str, start: datetime) -> str | None:
    path = home.tasks / keys.series_key(uid) / f"{ics_time(start)}.yaml"
    return tasks.parse_task(home, path).state.status if path.exists() else None


def run_tick(
    home: Home, clock: FakeClock, settings: Settings | None = None, **kw: object
) -> TickResult:
    brain = kw.pop("brain", OfflineBrain())
    return tick(home, settings or Settings(), brain, clock)  # type: ignore[arg-type]


def flaky_brain(failures: int, retryable: bool = True) -> RecordingBrain:
    """Fails the first `failures` calls (retryable unless told), then answers."""
    return RecordingBrain(BrainError("overloaded", retryable=retryable), failures=failures)


def test_hourly_series_catch_up_latest(home: Home) -> None:
    start = NOW - timedelta(days=3)
    write_ics(home, "h.ics", event("hourly", start, extra="RRULE:FREQ=HOURLY"))
    result = run_tick(home, FakeClock(NOW + timedelta(minutes=5)))
    assert [o.task_id for o in result.outcomes] == [f"{keys.series_key('hourly')}/{ics_time(NOW)}"]
    # Within grace (12 h before 12:05): 12 occurrences, 11 skipped; older: no file at all.
    assert len(result.skipped) == 11
    folder = home.tasks / keys.series_key("hourly")
    assert len(list(folder.glob("*.yaml"))) == 12
    assert status_of(home, "hourly", NOW - timedelta(hours=11)) == "skipped"
    assert status_of(home, "hourly", NOW - timedelta(hours=12)) is None
    assert len(executions(home, "hourly")) == 1
    again = run_tick(home, FakeClock(NOW + timedelta(minutes=6)))  # nothing new
    assert again.outcomes == () and again.skipped == ()


def test_catch_up_all_runs_oldest_first_each_seeing_the_last(home: Home) -> None:
    write_ics(
        home, "h.ics", event("all", NOW - timedelta(hours=2, minutes=30), extra="RRULE:FREQ=HOURLY")
    )
    result = run_tick(home, FakeClock(NOW), Settings(catch_up=CatchUp.ALL, grace=3 * 3600.0))
    records = executions(home, "all")
    assert [r.occurrence for r in records] == [
        (NOW - timedelta(hours=h, minutes=30)).isoformat() for h in (2, 1, 0)
    ]
    assert [
        f"Prior executions in context: {n}" in str(r.response) for n, r in enumerate(records)
    ] == [True] * 3
    assert result.skipped == ()


def test_catch_up_none_runs_only_a_fresh_one(home: Home) -> None:
    write_ics(
        home,
        "n.ics",
        event("old", NOW - timedelta(minutes=5)),
        event(
            "fresh", NOW - timedelta(seconds=30), extra="RRULE:FREQ=MINUTELY;INTERVAL=20;COUNT=2"
        ),
    )
    # "fresh" had one occurrence 30 s ago; "old" started 5 minutes ago.
    result = run_tick(home, FakeClock(NOW), Settings(catch_up=CatchUp.NONE))
    assert [o.key for o in result.outcomes] == [keys.series_key("fresh")]
    assert status_of(home, "old", NOW - timedelta(minutes=5)) == "skipped"


def test_grace_and_a_brand_new_home_do_not_replay_history(home: Home) -> None:
    write_ics(home, "d.ics", event("daily", NOW - timedelta(days=30), extra="RRULE:FREQ=DAILY"))
    result = run_tick(home, FakeClock(NOW + timedelta(hours=13)), Settings(grace=3600.0))
    assert result.outcomes == () and result.skipped == ()
    assert not (home.tasks / keys.series_key("daily")).exists()


def test_task_file_fields(home: Home) -> None:
    write_ics(
        home,
        "f.ics",
        event("fields@example.com", NOW, "Daily briefing", "DESCRIPTION:Summarise the news"),
    )
    (outcome,) = run_tick(home, FakeClock(NOW + timedelta(seconds=1))).outcomes
    task = tasks.load_task(home, outcome.task_id)
    assert (task.title, task.instructions) == ("Daily briefing", "Summarise the news")
    assert (task.source, task.calendar, task.caldav_uid) == ("local", "agent", "fields@example.com")
    assert task.recurrence_id == task.key == keys.series_key("fields@example.com")
    assert task.occurrence == NOW.isoformat()
    assert task.state.status == "completed" and task.state.attempts == 1
    assert task.state.session_id == keys.session_id(task.key)
    text = task.path.read_text(encoding="utf-8")
    assert text.index("recurrence_id:") < text.index(tasks.MARKER)


def test_task_reference_takes_instructions_and_model(home: Home) -> None:
    (home.tasks / "weekly-review.yaml").write_text(
        "title: Weekly review\ninstructions: |\n  List the three most important open items.\n"
        "model: claude-test-model\nmax_tokens: 321\nsystem: Be brief.\n",
        encoding="utf-8",
    )
    write_ics(
        home, "r.ics", event("ref", NOW, "Review", "DESCRIPTION:task: weekly-review\\nignored")
    )
    (outcome,) = run_tick(home, FakeClock(NOW)).outcomes
    task = tasks.load_task(home, outcome.task_id)
    assert task.instructions == "List the three most important open items.\n"
    assert (task.model, task.max_tokens, task.system) == ("claude-test-model", 321, "Be brief.")
    assert task.title == "Review" and task.key == keys.series_key("ref")
    assert outcome.record.instructions == task.instructions


def test_pending_task_of_a_deleted_occurrence_is_cancelled(home: Home) -> None:
    path = write_ics(home, "c.ics", event("doomed", NOW + timedelta(hours=1)))
    calendars = load_calendars(home, Settings())
    (occ,) = occurrences_between(calendars, NOW, NOW + timedelta(days=1))
    clock = FakeClock(NOW)
    find_or_create(home, occ, clock)  # as if a run had been cut short before starting
    path.unlink()
    result = run_tick(home, clock)
    assert result.cancelled == (occ.task_id,)
    assert tasks.load_task(home, occ.task_id).state.status == "cancelled"


def test_retries_back_off_then_stop(home: Home) -> None:
    write_ics(home, "x.ics", event("flaky", NOW))
    brain = flaky_brain(failures=5)
    clock = FakeClock(NOW)
    settings = Settings(retries=2)
    first = run_tick(home, clock, settings, brain=brain)
    assert [o.status for o in first.outcomes] == ["failed"] and not first.ok
    (occ,) = occurrences_between(load_calendars(home, settings), NOW, NOW + timedelta(seconds=1))
    for attempt in (1, 2):
        delay = claims.retry_delay(occ.task_id, attempt)
        assert 30 * 2 ** (attempt - 1) * 0.8 <= delay <= 30 * 2 ** (attempt - 1) * 1.2
        wake = next_wakeup(home, settings, load_calendars(home, settings), clock.now())
        assert wake is not None and abs((wake - clock.now()).total_seconds() - delay) < 0.01
        clock.advance(delay - 1)
        assert run_tick(home, clock, settings, brain=brain).outcomes == ()
        clock.advance(1)
        assert len(run_tick(home, clock, settings, brain=brain).outcomes) == 1
    assert len(executions(home, "flaky")) == 3  # 1 + retries
    clock.advance(3600)
    assert run_tick(home, clock, settings, brain=brain).outcomes == ()
    assert tasks.load_task(home, occ.task_id).state.attempts == 3


def test_non_retryable_failure_is_not_retried(home: Home) -> None:
    write_ics(home, "x.ics", event("auth", NOW))
    brain = flaky_brain(failures=5, retryable=False)
    clock = FakeClock(NOW)
    assert len(run_tick(home, clock, brain=brain).outcomes) == 1
    clock.advance(3600)
    assert run_tick(home, clock, brain=brain).outcomes == ()
    assert brain.calls == 1


def test_retry_succeeds_and_is_not_run_again(home: Home) -> None:
    write_ics(home, "x.ics", event("once-flaky", NOW))
    brain = flaky_brain(failures=1)
    clock = FakeClock(NOW)
    run_tick(home, clock, brain=brain)
    clock.advance(60)
    assert [o.status for o in run_tick(home, clock, brain=brain).outcomes] == ["completed"]
    clock.advance(600)
    assert run_tick(home, clock, brain=brain).outcomes == ()
    assert [r.status for r in executions(home, "once-flaky")] == ["failed", "completed"]


def test_reverted_task_file_does_not_run_again(home: Home) -> None:
    write_ics(home, "x.ics", event("revert", NOW))
    clock = FakeClock(NOW)
    (outcome,) = run_tick(home, clock).outcomes
    path = tasks.task_path(home, outcome.task_id)
    user, _ = tasks.split_text(path.read_text(encoding="utf-8"))
    old_copy = user + tasks.render_state(tasks.TaskState(status=TaskStatus.PENDING))
    path.write_text(old_copy, encoding="utf-8")  # an editor writes back an older copy
    clock.advance(10)
    assert run_tick(home, clock).outcomes == ()
    shutil.rmtree(home.state / "claims")  # .runner/ may be deleted: the log still says
    path.write_text(old_copy, encoding="utf-8")
    assert run_tick(home, clock).outcomes == ()
    # ... also once compression has moved the record to the archive.
    key = outcome.key
    record = logs.read_log(home, key).executions[0]
    home.archive.mkdir(parents=True, exist_ok=True)
    logs.archive_path(home, key).write_text(json.dumps(record.to_json()) + "\n", encoding="utf-8")
    summary = {"type": "summary", "id": "s1", "created": "x", "covers": 1, "text": "ran once"}
    logs.log_path(home, key).write_text(json.dumps(summary) + "\n", encoding="utf-8")
    shutil.rmtree(home.state / "claims", ignore_errors=True)
    assert run_tick(home, clock).outcomes == ()
    assert len(executions(home, "revert")) == 1


def test_malformed_ics_beside_a_good_one(home: Home) -> None:
    write_ics(home, "good.ics", event("good", NOW))
    bad = home.calendars / "agent" / "bad.ics"
    bad.write_text("BEGIN:VCALENDAR\nthis is not ical\n", encoding="utf-8")
    result = run_tick(home, FakeClock(NOW))
    assert [o.key for o in result.outcomes] == [keys.series_key("good")]
    assert any(p.path == str(bad) for p in result.problems)


def test_hostile_uids_stay_inside_the_home(home: Home, tmp_path: Path) -> None:
    uids = ["../../x", "a/b", "x" * 300, "ünïcødé-✓@例え.jp", "/etc/passwd", "..", "nul\x00byte"]
    events = [event(uid, NOW, f"Hostile {i}") for i, uid in enumerate(uids)]
    write_ics(home, "hostile.ics", *events)
    calendars = load_calendars(home, Settings())
    found = occurrences_between(calendars, NOW, NOW + timedelta(seconds=1))
    assert len(found) == len(uids)
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(home.root)}
    result = run_tick(home, FakeClock(NOW))
    assert len(result.outcomes) == len(uids) and result.ok
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(home.root)}
    assert after == before
    root = home.root.resolve()
    for path in home.root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    for occ in found:
        task = tasks.load_task(home, occ.task_id)
        assert task.caldav_uid == occ.uid and task.path.parent.parent == home.tasks
        assert len(executions(home, occ.uid)) == 1


def test_due_plan_is_ordered_and_pure(home: Home) -> None:
    write_ics(
        home,
        "p.ics",
        event("b-later", NOW - timedelta(minutes=1)),
        event("a-earlier", NOW - timedelta(minutes=2)),
    )
    calendars = load_calendars(home, Settings())
    plan = plan_due(home, Settings(), calendars, NOW)
    assert [w.key for w in plan] == [keys.series_key("a-earlier"), keys.series_key("b-later")]
    assert not any(home.tasks.glob("*/*.yaml"))


def test_concurrent_ticks_run_each_occurrence_once(home: Home) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    events = [event(f"busy-{i}", now - timedelta(minutes=1 + i % 3)) for i in range(12)]
    events.append(
        event(
            "series", now - timedelta(minutes=40), extra="RRULE:FREQ=MINUTELY;INTERVAL=10;COUNT=4"
        )
    )
    write_ics(home, "busy.ics", *events)
    (home.root / "runner.yaml").write_text("catch_up: all\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "runner", "--home", str(home.root), "tick", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    ran = [run["task"] for out, _ in outputs for run in json.loads(out)["runs"]]
    assert len(ran) == len(set(ran)) == 16
    for i in range(12):
        assert len(executions(home, f"busy-{i}")) == 1
    series = executions(home, "series")
    assert [r.occurrence for r in series] == sorted(str(r.occurrence) for r in series)
    assert len(series) == 4


def test_cli_tick_warns_about_a_broken_neighbour(home: Home) -> None:
    now = datetime.now(UTC)
    write_ics(home, "good.ics", event("cli-good", now - timedelta(seconds=5)))
    (home.calendars / "agent" / "bad.ics").write_text("garbage\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(home.root), "tick"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert f"{home.calendars / 'agent' / 'bad.ics'}:1: " in out.stderr
    assert "1 completed" in out.stderr
    assert len(executions(home, "cli-good")) == 1


def test_next_wakeup_is_the_next_fire_time(home: Home) -> None:
    write_ics(
        home,
        "w.ics",
        event("soon", NOW + timedelta(minutes=7)),
        event("later", NOW + timedelta(hours=5)),
    )
    calendars = load_calendars(home, Settings())
    assert next_wakeup(home, Settings(), calendars, NOW) == NOW + timedelta(minutes=7)
    assert next_wakeup(home, Settings(), calendars, NOW + timedelta(minutes=7)) == NOW + timedelta(
        hours=5
    )
    assert next_wakeup(home, Settings(), calendars, NOW + timedelta(days=1)) is None


def test_missing_reference_and_broken_task_file_are_reported_not_fatal(home: Home) -> None:
    ics = write_ics(
        home,
        "m.ics",
        event("dangling", NOW, extra="DESCRIPTION:task: no-such-task"),
        event("broken", NOW),
        event("fine", NOW),
    )
    broken = home.tasks / keys.series_key("broken") / f"{ics_time(NOW)}.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("title: [unclosed\ninstructions: x\n", encoding="utf-8")
    result = run_tick(home, FakeClock(NOW))
    assert [o.key for o in result.outcomes] == [keys.series_key("fine")]
    where = {(p.path, p.line) for p in result.problems}
    assert (str(broken), 1) in where or (str(broken), 2) in where, result.problems
    dangling = [p for p in result.problems if p.path == str(ics)]
    assert len(dangling) == 1 and "no-such-task" in dangling[0].message
    assert status_of(home, "dangling", NOW) is None  # no file: it is tried again next tick


def test_run_series_events_and_two_threads_run_once(home: Home) -> None:
    """The watch loop's use: plan, then run_series from worker threads."""
    import threading

    from runner.run.series import run_series

    write_ics(
        home,
        "t.ics",
        event("threaded", NOW - timedelta(minutes=2), extra="RRULE:FREQ=MINUTELY;COUNT=3"),
    )
    settings = Settings(catch_up=CatchUp.ALL)
    clock = FakeClock(NOW)
    (work,) = plan_due(home, settings, load_calendars(home, settings), NOW)
    assert [o.fire_at for o in work.occurrences] == [NOW - timedelta(minutes=m) for m in (2, 1, 0)]
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_event(event: Event) -> None:
        with lock:
            seen.append((event.KIND, str(event.to_json()["task"])))

    threads = [
        threading.Thread(
            target=run_series, args=(home, settings, work, OfflineBrain(), clock, on_event)
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [o.task_id for o in work.occurrences]
    assert seen == [(kind, i) for i in ids for kind in ("fired", "finished")]
    assert len(executions(home, "threaded")) == 3


def test_planning_again_reuses_the_expansion(home: Home) -> None:
    """The watch loop plans often: with finished tasks around, nothing is re-expanded."""
    from runner.schedule.cache import CalendarCache

    write_ics(home, "r.ics", event("reuse", NOW - timedelta(hours=3), extra="RRULE:FREQ=HOURLY"))
    clock = FakeClock(NOW)
    run_tick(home, clock, Settings(catch_up=CatchUp.ALL))
    cache = CalendarCache(home)
    calendars = cache.refresh(Settings())
    assert plan_due(home, Settings(), calendars, NOW) == []
    (cfile,) = calendars.files
    expansion = cfile.expansion
    for minutes in (1, 30, 59):
        assert plan_due(home, Settings(), calendars, NOW + timedelta(minutes=minutes)) == []
        next_wakeup(home, Settings(), calendars, NOW + timedelta(minutes=minutes))
    assert cfile.expansion is expansion  # served from the horizon every time


def test_cli_tick_exits_1_when_a_task_fails(home: Home) -> None:
    """A real SDK call to a closed local port fails; tick reports it and exits 1."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    write_ics(home, "f.ics", event("fails", datetime.now(UTC) - timedelta(seconds=5)))
    (home.root / "runner.yaml").write_text(
        "brain:\n  provider: anthropic\n  max_retries: 0\n  timeout: 5s\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}")
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--home", str(home.root), "tick", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["counts"]["failed"] == 1
    assert [r.status for r in executions(home, "fails")] == ["failed"]


def test_a_corrupt_log_stops_only_its_own_series(home: Home) -> None:
    write_ics(home, "l.ics", event("corrupt", NOW), event("healthy", NOW))
    path = logs.log_path(home, keys.series_key("corrupt"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"type": "execution"}\nnot json\n{"type": "execution"}\n', encoding="utf-8")
    result = run_tick(home, FakeClock(NOW))
    assert [o.key for o in result.outcomes] == [keys.series_key("healthy")]
    assert [(p.path, p.line) for p in result.problems] == [(str(path), 2)]
    assert next_wakeup(home, Settings(), load_calendars(home, Settings()), NOW) is None
