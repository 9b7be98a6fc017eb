"""Log compression: bounded context over a long daily series, and an archive that costs
nothing at run time.

1. Context tokens sent on runs 1..200 of a daily series with default settings
   (compression.max_tokens 50000, max_executions 20, keep_recent 5), with and without
   compression. The offline brain's estimate (4 characters a token) counts them; its
   answers are padded to about 3,000 tokens so that compression triggers on tokens.
   Target: every run's context at most max_tokens plus one execution.
2. Time to build a run's context (read the live log, assemble the request) with 10
   vs 10,000 archived executions. Target ratio <= 1.1: context building never reads
   the archive.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, machine
from runner.brain.context import build_request
from runner.brain.offline import OfflineBrain, estimate_tokens
from runner.brain.protocol import BrainReply, BrainRequest, TextSink
from runner.home import Home
from runner.init import init_home
from runner.logs import store as logs
from runner.run import executor
from runner.settings import CompressionSettings, Settings
from runner.tasks import files as tasks
from tests.fakes import FakeClock

RUNS = 200
ANSWER_TOKENS = 3000
KEY = "briefing-bench0001"
START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


class LongAnswers(OfflineBrain):
    """The offline brain with a ~3,000-token answer, like a long daily briefing."""

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        reply = super().complete(request, None)
        line = "The market opened flat; three items need a decision this week. "
        padding = (line * (ANSWER_TOKENS * 4 // len(line) + 1))[: ANSWER_TOKENS * 4]
        text = reply.text + padding
        usage = type(reply.usage)(
            input_tokens=reply.usage.input_tokens, output_tokens=estimate_tokens(text)
        )
        return BrainReply(text=text, model=reply.model, usage=usage)


def fresh_home(name: str) -> Home:
    root = OUT / name
    if root.exists():
        shutil.rmtree(root)
    home = Home(root)
    init_home(home)
    return home


def write_day(home: Home, day: int) -> str:
    start = START + timedelta(days=day - 1)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    path = home.tasks / KEY / f"{stamp}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    instructions = (
        f"Write the daily briefing for {start.date()}.\n"
        f"Today's focus: item {day}; compare with yesterday."
    )
    fields = {
        "title": "Daily briefing",
        "instructions": instructions,
        "source": "local",
        "calendar": "agent",
        "occurrence": start.isoformat(),
        "recurrence_id": KEY,
    }
    path.write_text(tasks.new_task_text(fields, tasks.TaskState()), encoding="utf-8")
    return f"{KEY}/{stamp}"


def series(settings: Settings, name: str) -> tuple[list[int], int, int]:
    """(input tokens sent per run, compressions, largest execution in tokens)."""
    home = fresh_home(name)
    clock = FakeClock(START)
    brain = LongAnswers()
    sent: list[int] = []
    compressions = 0
    largest = 0
    for day in range(1, RUNS + 1):
        outcome = executor.run_task(home, settings, write_day(home, day), brain, clock)
        record = outcome.record
        sent.append(record.usage.input_tokens)
        size = estimate_tokens(str(record.instructions)) + estimate_tokens(str(record.response))
        largest = max(largest, size)
        if outcome.compression is not None and outcome.compression.status == "compressed":
            compressions += 1
        clock.advance(86400)
    shutil.rmtree(home.root)
    return sent, compressions, largest


def context_tokens_table() -> None:
    on = Settings()
    off = Settings(compression=CompressionSettings(max_tokens=10**12, max_executions=10**9))
    started = time.perf_counter()
    with_c, compressions, largest = series(on, "compression-on")
    without_c, _, _ = series(off, "compression-off")
    elapsed = time.perf_counter() - started
    limit = on.compression.max_tokens + largest
    print(f"1. context tokens sent per run, daily series, {RUNS} runs, default settings")
    print(f"   (answers ~{ANSWER_TOKENS} tokens; offline estimate; {elapsed:.1f} s for both)")
    print(f"   {'run':>5}  {'with compression':>17}  {'without':>9}")
    for run in [1, *range(10, RUNS + 1, 10)]:
        print(f"   {run:>5}  {with_c[run - 1]:>17,}  {without_c[run - 1]:>9,}")
    print(f"   {'max':>5}  {max(with_c):>17,}  {max(without_c):>9,}")
    verdict = "ok" if max(with_c) <= limit else "MISSED"
    print(
        f"   compressions: {compressions}; one execution <= {largest:,} tokens; "
        f"target: every run <= {on.compression.max_tokens:,} + {largest:,} = {limit:,}: {verdict}"
    )


def archived_home(name: str, archived: int) -> tuple[Home, tasks.Task]:
    """A live log of [header, 5 executions] with `archived` executions behind it."""
    home = fresh_home(name)
    task_id = write_day(home, 1)
    lines = []
    for n in range(archived):
        record = {
            "type": "execution",
            "id": f"archived-{n:05d}",
            "task": task_id,
            "session_id": "bench",
            "occurrence": START.isoformat(),
            "started": "2026-01-01T08:00:00.000000Z",
            "finished": "2026-01-01T08:00:04.000000Z",
            "status": "completed",
            "model": "offline",
            "instructions": f"Write the daily briefing number {n}.",
            "response": "An answer of a few lines. " * 40,
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3000, "output_tokens": 300},
            "error": None,
        }
        lines.append(logs.record_line(record))
    home.archive.mkdir(parents=True, exist_ok=True)
    logs.archive_path(home, KEY).write_text("\n".join(lines) + "\n", encoding="utf-8")
    header = {
        "type": "summary",
        "id": "header",
        "created": "2026-01-02T08:00:00.000000Z",
        "covers": archived,
        "usage": {"input_tokens": 3000 * archived, "output_tokens": 300 * archived},
        "text": "Standing instructions: write the daily briefing.\n" * 50,
    }
    live = [logs.record_line(header)]
    for n in range(5):
        recent = {
            "type": "execution",
            "id": f"recent-{n}",
            "task": task_id,
            "status": "completed",
            "instructions": "Write the daily briefing.",
            "response": "A long answer. " * 800,
            "usage": {"input_tokens": 20000, "output_tokens": 3000},
        }
        live.append(logs.record_line(recent))
    logs.log_path(home, KEY).write_text("\n".join(live) + "\n", encoding="utf-8")
    return home, tasks.load_task(home, task_id)


def build_time() -> None:
    settings = Settings()
    small, small_task = archived_home("archive-10", 10)
    large, large_task = archived_home("archive-10000", 10_000)
    archive_mb = logs.archive_path(large, KEY).stat().st_size / 1e6
    batch, rounds = 20, 60
    times: dict[str, list[float]] = {"10": [], "10,000": []}

    def sample(home: Home, task: tasks.Task) -> float:
        start = time.perf_counter()
        for _ in range(batch):
            build_request(task, settings, logs.read_log(home, task.key))
        return (time.perf_counter() - start) / batch

    for _ in range(3):  # warm-up
        sample(small, small_task)
        sample(large, large_task)
    for _ in range(rounds):  # alternately, so drift hits both alike
        times["10"].append(sample(small, small_task))
        times["10,000"].append(sample(large, large_task))
    a, b = statistics.median(times["10"]), statistics.median(times["10,000"])
    print("2. time to build a run's context (read the live log, assemble the request)")
    print(f"   10 archived executions:     median {a * 1e6:7.0f} µs")
    print(f"   10,000 archived ({archive_mb:.0f} MB): median {b * 1e6:7.0f} µs")
    print(f"   ratio: {b / a:.2f} (target <= 1.1)")
    shutil.rmtree(small.root)
    shutil.rmtree(large.root)


def main() -> None:
    print(f"machine: {machine()}")
    context_tokens_table()
    build_time()


if __name__ == "__main__":
    main()
