"""The watch loop's parts: the one-watch lock, file-event filtering and debounce, the
real inotify watcher, the worker pool and shutdown's cancellation at the brain."""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.brain.cancellable import CancellableBrain, Cancelled
from runner.brain.offline import OfflineBrain
from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink
from runner.cli.events_view import EventView
from runner.clock import SystemClock
from runner.errors import LockBusy
from runner.events import Event, Finished, Fired, Skipped, notices_to
from runner.home import Home
from runner.logs.records import INTERRUPTED
from runner.run import executor
from runner.settings import CalendarSettings, Settings
from runner.tasks import files as tasks
from runner.watch.files import MAX_DELAY, QUIET, ChangeBuffer, FileWatcher, is_relevant
from runner.watch.lock import acquire_watch_lock, pid_path, watch_pid
from runner.watch.loop import WatchLoop
from runner.watch.sync import FIRST_RETRY, BackgroundSync
from runner.watch.workers import SeriesPool
from tests.caldav_servers import DavServer, event, free_port
from tests.fakes import FakeClock

# -- one watch per home ---------------------------------------------------------------


def test_a_second_watch_lock_names_the_running_pid(home: Home) -> None:
    assert watch_pid(home) is None
    with acquire_watch_lock(home):
        assert watch_pid(home) == os.getpid()
        with pytest.raises(LockBusy) as caught:
            acquire_watch_lock(home)
        assert f"pid {os.getpid()}" in caught.value.message
    assert watch_pid(home) is None
    assert not pid_path(home).exists()


def test_a_pid_file_left_by_a_crash_means_nothing(home: Home) -> None:
    with acquire_watch_lock(home):
        pass
    pid_path(home).write_text("999999\n", encoding="ascii")  # as if killed -9
    assert watch_pid(home) is None
    with acquire_watch_lock(home):
        assert watch_pid(home) == os.getpid()


# -- which file events matter -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "is_dir", "relevant"),
    [
        ("calendars/work/event.ics", False, True),
        ("calendars/work", True, True),
        ("calendars/work/.event.ics.a1b2.tmp", False, False),  # our own atomic write
        ("calendars/work/event.ics.tmp", False, False),
        ("calendars/work/.event.ics.swp", False, False),  # vim swap
        ("calendars/work/.event.ics.swx", False, False),
        ("calendars/work/4913", False, False),  # vim's probe file
        ("calendars/work/event.ics~", False, False),  # backup
        ("calendars/work/#event.ics#", False, False),  # emacs autosave
        ("calendars/work/.#event.ics", False, False),  # emacs lock
        ("calendars/work/notes.txt", False, False),
        ("tasks/weekly.yaml", False, True),
        ("tasks/.weekly.yaml.swp", False, False),
        ("tasks/series-1a2b3c4d/20261126T080000Z.yaml", False, False),  # the runner's own
        ("tasks/series-1a2b3c4d", True, False),
        ("logs/series.jsonl", False, False),
        (".runner/claims/x", False, False),
        ("runner.yaml", False, False),
    ],
)
def test_is_relevant(home: Home, rel: str, is_dir: bool, relevant: bool) -> None:
    assert is_relevant(home, home.root / rel, is_dir) is relevant


class FakeMono:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_changes_are_debounced_but_never_held_past_max_delay() -> None:
    mono = FakeMono()
    wakes: list[int] = []
    buffer = ChangeBuffer(mono, lambda: wakes.append(1))
    assert buffer.due_in() is None
    buffer.add(Path("/h/calendars/a/x.ics"))
    assert buffer.due_in() == pytest.approx(QUIET)
    # A burst (a sync writing many files) keeps pushing the quiet period out...
    while mono.now < 1.0:
        mono.now += QUIET / 2
        buffer.add(Path(f"/h/calendars/a/{mono.now}.ics"))
        assert buffer.due_in() is not None
    # ...but not past MAX_DELAY after its first event: a change is seen within a second.
    assert buffer.due_in() == 0
    assert MAX_DELAY + QUIET < 1.0
    assert len(buffer.take()) > 10 and buffer.due_in() is None
    assert len(wakes) > 10


class Seen:
    """A ChangeBuffer whose wake-ups tests can wait for."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.buffer = ChangeBuffer(SystemClock().monotonic, self.event.set)

    def wait_paths(self) -> set[Path]:
        assert self.event.wait(5), "no file event arrived"
        self.event.clear()
        # Let the rest of the burst arrive (inotify delivers it within microseconds).
        while self.event.wait(0.2):
            self.event.clear()
        return self.buffer.take()


def test_the_real_watcher_sees_rename_saves_and_ignores_editor_files(home: Home) -> None:
    folder = home.calendars / "work"
    folder.mkdir()
    seen = Seen()
    watcher = FileWatcher(home, seen.buffer)
    watcher.start()
    try:
        # An editor's save: swap file, temp file, then rename over the target.
        (folder / ".event.ics.swp").write_text("swap")
        tmp = folder / "event.ics.tmp"
        tmp.write_text("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        os.replace(tmp, folder / "event.ics")
        assert seen.wait_paths() == {folder / "event.ics"}
        # A new calendar folder with a file written in place.
        (home.calendars / "new").mkdir()
        (home.calendars / "new" / "a.ics").write_text("x")
        assert folder.parent / "new" / "a.ics" in seen.wait_paths()
        # A hand-written task edited in place.
        (home.tasks / "hello.yaml").write_text("title: Hi\ninstructions: Hi.\n")
        assert seen.wait_paths() == {home.tasks / "hello.yaml"}
        # Logs and the runner's own state never wake the loop (not even watched).
        (home.logs / "x.jsonl").write_text("{}\n")
        (home.state / "y").write_text("y")
        assert not seen.event.wait(0.3)
    finally:
        watcher.stop()


# -- the worker pool ------------------------------------------------------------------------


class Work:
    def __init__(self, key: str) -> None:
        self.key = key


def test_pool_runs_one_per_series_and_different_series_in_parallel() -> None:
    both_running = threading.Barrier(3, timeout=10)
    release = threading.Event()
    ran: list[str] = []
    done: list[str] = []

    def run(work: Work) -> None:
        ran.append(work.key)
        both_running.wait()
        assert release.wait(10)

    pool: SeriesPool[Work] = SeriesPool(2, run, done.append)
    assert pool.submit(Work("a")) and pool.submit(Work("b"))
    both_running.wait()  # a and b run at the same time
    assert not pool.submit(Work("a"))  # a is still running: not taken twice
    assert pool.running_keys() == {"a", "b"}
    release.set()
    assert pool.wait_idle(10)
    pool.close()
    assert sorted(ran) == ["a", "b"] and sorted(done) == ["a", "b"]
    assert not pool.submit(Work("c"))  # closed: no new work


def test_pool_names_an_unexpected_error_and_goes_on() -> None:
    done: queue.SimpleQueue[str] = queue.SimpleQueue()

    def run(work: Work) -> None:
        raise ValueError(f"boom in {work.key}")

    pool: SeriesPool[Work] = SeriesPool(1, run, done.put)
    heard: list[Event] = []
    with notices_to(heard.append):
        assert pool.submit(Work("a"))
        assert done.get(timeout=10) == "a"
        assert pool.submit(Work("a"))  # the series is free again
        assert done.get(timeout=10) == "a"
    pool.close()
    # a notice is one line: it must say what went wrong
    messages = [str(n.to_json()["message"]) for n in heard]
    assert len(messages) == 2 and all("boom in a" in m for m in messages)


class BlockingBrain(OfflineBrain):
    """Answers nothing until released: a slow API call."""

    name = "blocking"

    def __init__(self) -> None:
        super().__init__()
        self.called = threading.Event()
        self.release = threading.Event()

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        self.called.set()
        self.release.wait(30)
        raise AssertionError("released only when the test ends")

    def count_tokens(self, request: BrainRequest) -> int:
        return 0

    def summarize(self, request: SummaryRequest) -> BrainReply:
        raise AssertionError("not used")


def test_cancel_at_shutdown_records_the_run_as_interrupted(home: Home) -> None:
    inner = BlockingBrain()
    brain = CancellableBrain(inner)
    clock = SystemClock()
    finished: list[str] = []

    def run(work: Work) -> None:
        executor.run_task(home, Settings(), "hello", brain, clock)

    pool: SeriesPool[Work] = SeriesPool(1, run, finished.append)
    try:
        assert pool.submit(Work("hello"))
        assert inner.called.wait(10)
        pool.close()
        brain.refuse_new()  # shutdown begins: the pending call is given its grace
        assert not pool.wait_idle(0.05)  # still in the brain call
        brain.cancel()
        assert pool.wait_idle(10)
    finally:
        inner.release.set()
    assert finished == ["hello"]
    task = tasks.load_task(home, "hello")
    assert task.state.status == "failed" and task.state.error == INTERRUPTED
    records = [json.loads(x) for x in (home.logs / "hello.jsonl").read_text().splitlines()]
    assert [(r["status"], r["error"]) for r in records] == [("failed", "interrupted")]
    # A brain refusing new calls answers none, without calling the real brain.
    request = BrainRequest(model="m", max_tokens=1, prompt="p", session_id="s")
    closing = CancellableBrain(OfflineBrain())
    assert closing.complete(request).text
    closing.refuse_new()
    with pytest.raises(Cancelled):
        closing.complete(request)


# -- background sync ------------------------------------------------------------------------


def test_a_sync_outage_is_reported_once_and_its_end_too(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    down = CalendarSettings(name="agent", url=f"http://127.0.0.1:{free_port()}/cal/")
    settings = Settings(calendars=(down,), sync_every=300)
    events: list[tuple[str, dict[str, Any]]] = []
    sync = BackgroundSync(home, settings, lambda e: events.append((e.KIND, e.to_json())))
    delays = [sync.sync_once() for _ in range(3)]
    assert [kind for kind, _ in events] == ["error"]  # once per outage, not per attempt
    assert events[0][1]["calendar"] == "agent"
    assert delays == [FIRST_RETRY, 2 * FIRST_RETRY, 4 * FIRST_RETRY]  # backoff
    # The server is back (here: the calendar's url now reaches it).
    sync.settings = replace(settings, calendars=(replace(down, url=url, username="user"),))
    assert sync.sync_once() == 300
    kind, data = events[-1]
    assert kind == "sync" and data["recovered"] == ["agent"] and data["changes"] == 1
    assert (home.calendars / "agent").is_dir() and list((home.calendars / "agent").iterdir())


# -- what the operator sees ---------------------------------------------------------------


def test_human_view_folds_skipped_occurrences_and_shows_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    view = EventView(clock, as_json=False)
    about = {"key": "k-1", "title": "Notes", "calendar": "c", "fire_at": "t"}
    for n in range(300):  # a night away from a minutely event
        view(Skipped(**{**about, "task": f"k-1/2026112{n}"}))
    task = "k-1/20261126T080000Z"
    view(Fired(**about, task=task, attempt=1))
    usage = {"input_tokens": 12, "output_tokens": 5}
    view(
        Finished(
            **about,
            task=task,
            status="completed",
            final=True,
            error=None,
            usage=usage,
            seconds=1.25,
        )
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "08:00:00 skipped  300 missed occurrences of k-1 (catch_up)",
        "08:00:00 fired    k-1/20261126T080000Z  Notes",
        "08:00:00 finished k-1/20261126T080000Z  completed in 1.2 s, tokens 12 in / 5 out",
    ]
    json_view = EventView(clock, as_json=True)
    json_view(Skipped(**{**about, "task": "k-1/x"}))
    out = capsys.readouterr().out
    assert json.loads(out) == {
        "version": 1,
        "event": "skipped",
        "task": "k-1/x",
        "key": "k-1",
        "title": "Notes",
        "calendar": "c",
        "fire_at": "t",
        "time": "2026-11-26T08:00:00.000000Z",
    }


def test_an_unexpected_error_in_a_step_is_reported_and_the_loop_goes_on(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No real input is known to break a step; a bug is stood in for by one failing step.
    import runner.watch.daemon as watch_module

    real_step = WatchLoop.step
    calls: list[int] = []

    def flaky_step(self: WatchLoop) -> float:
        calls.append(1)
        if len(calls) == 2:  # the first step in the loop (the first plan is at start)
            raise RuntimeError("boom")
        if len(calls) == 3:  # it planned again after the error: done
            watch.stop()
        return real_step(self)

    monkeypatch.setattr(watch_module, "STEP_BACKOFF", 0.05)
    monkeypatch.setattr(WatchLoop, "step", flaky_step)
    events: list[tuple[str, dict[str, object]]] = []
    watch: watch_module.Watch

    def emit(event: Event) -> None:
        events.append((event.KIND, event.to_json()))

    watch = watch_module.Watch(home, Settings(), SystemClock(), emit)
    stopper = threading.Timer(20, watch.stop)  # a bound, should the loop hang
    stopper.start()
    try:
        assert watch.run() == 0
    finally:
        stopper.cancel()
    errors = [d for k, d in events if k == "error"]
    assert errors and "boom" in str(errors[0]["message"])
    assert len(calls) == 3  # stepped again after the failure
    assert events[-1][0] == "stopped"


def test_calendar_text_in_event_lines_cannot_drive_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A SUMMARY is remote data: an escape sequence in it is shown, not obeyed."""
    clock = FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    view = EventView(clock, as_json=False)
    hostile = "Notes\x1b[2J\x1b]0;owned\x07\nsecond line"
    view(Fired(task="k/1", key="k", title=hostile, calendar="c", fire_at="t", attempt=1))
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1
    assert "Notes\\x1b[2J" in err
