"""Soak: SIGKILL tick, run, compress and watch at random moments, then check every
invariant (issue 13). `just soak [SECONDS]`; CI runs a short one.

A home with three recurring series (every minute, half an hour of backlog,
catch_up all), a hand-written task in one of the series, low compression thresholds
(compress past 3 executions, keep 1), and the anthropic brain against the fake
Messages API (tests/fake_anthropic.py, reached by the real SDK) with random delays
and 529s. Commands start at random and most are killed with SIGKILL after a random
moment. Then a few undisturbed commands settle the home, and the script checks:

- each occurrence completed at most once (live log and archive, ids counted once);
- nothing left `running`;
- every whole line of every live log and archive parses as a record;
- every execution id at most once in its live log, and once in `runner log --all`;
- the user part of every task file unchanged since it was first written.

Prints the counts; exits 1 if an invariant failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.home import Home
from runner.init import init_home
from runner.keys import series_key
from runner.tasks.files import split_text
from tests.fake_anthropic import FakeAnthropic, Reply

UIDS = ("soak-a@example.com", "soak-b@example.com", "soak-c@example.com")
COMMANDS = ("tick", "run", "compress", "watch")


class FlakyApi(FakeAnthropic):
    """Random delays (0–0.4 s) and a 529 (overloaded) one time in six."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)

    def _next(self, path: str) -> Reply:
        with self._lock:
            self._served += 1
            roll, delay = self.rng.random(), self.rng.uniform(0, 0.4)
        if roll < 1 / 6:
            return Reply(status=529, delay=delay)
        return Reply(text=f"Answer {self._served}: noted.", delay=delay)


def make_home(root: Path) -> Home:
    home = Home(root / "home")
    init_home(home)
    start = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ")
    folder = home.calendars / "local"
    folder.mkdir(parents=True)
    for uid in UIDS:
        event = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//soak//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTART:{start}\r\nRRULE:FREQ=MINUTELY\r\n"
            f"SUMMARY:Soak {uid[5]}\r\nDESCRIPTION:Count the runs so far.\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        (folder / f"{uid[:6]}.ics").write_text(event, encoding="utf-8")
    home.settings_file.write_text(
        "brain:\n  provider: anthropic\n  timeout: 5s\n  max_retries: 1\n"
        "catch_up: all\ngrace: 1h\nretries: 2\nshutdown_grace: 1s\n"
        "compression:\n  max_executions: 3\n  keep_recent: 1\n",
        encoding="utf-8",
    )
    (home.tasks / "hello.yaml").write_text(
        f'title: "Soak note"\ninstructions: "Say hi.\n# runner state\nkeep this"\n'
        f"key: {series_key(UIDS[0])}\n",
        encoding="utf-8",
    )
    return home


def command(home: Home, kind: str, rng: random.Random) -> list[str]:
    base = [sys.executable, "-m", "runner", "--home", str(home.root)]
    if kind == "run":
        return [*base, "run", "hello"]
    if kind == "compress":
        return [*base, "compress", series_key(rng.choice(UIDS))]
    return [*base, kind]


def user_parts(home: Home, seen: dict[Path, str]) -> None:
    """Remember each task file's user part the first time it is seen."""
    for path in home.tasks.rglob("*.yaml"):
        if path not in seen:
            try:
                seen[path] = split_text(path.read_text(encoding="utf-8"))[0]
            except (OSError, UnicodeDecodeError):
                continue


def soak(home: Home, env: dict[str, str], seconds: float, rng: random.Random) -> Counter[str]:
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = rng.choice(COMMANDS)
        proc = subprocess.Popen(
            command(home, kind, rng),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        # Python and the SDK take ~1.5 s to start here: most kills land after that.
        wait = rng.uniform(0.3, 10.0 if kind == "watch" else 5.0)
        try:
            proc.wait(timeout=wait)
            counts[f"{kind} finished"] += 1
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
            proc.wait()
            counts[f"{kind} killed"] += 1
    return counts


def settle(home: Home, env: dict[str, str]) -> None:
    base = [sys.executable, "-m", "runner", "--home", str(home.root)]
    for args in (["list"], ["tick"], ["list"]):
        subprocess.run([*base, *args], capture_output=True, env=env, timeout=300, check=False)


def check(
    home: Home, env: dict[str, str], users: dict[Path, str]
) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    completed: Counter[str] = Counter()
    for path in sorted(home.logs.rglob("*.jsonl")):
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        if lines[-1]:
            counts["torn tails (set aside at the next append)"] += 1
        ids: Counter[str] = Counter()
        for line in lines[:-1]:
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                failures.append(f"{path}: a line does not parse")
                continue
            if record.get("type") == "summary":
                counts["summary headers"] += 1
                continue
            ids[str(record.get("id"))] += 1
        archived = path.parent.name == "archive"
        counts["archived lines" if archived else "live executions"] += sum(ids.values())
        if not archived and any(n > 1 for n in ids.values()):
            failures.append(f"{path}: an execution id twice in the live log")
    base = [sys.executable, "-m", "runner", "--home", str(home.root)]
    for uid in UIDS:
        key = series_key(uid)
        shown = subprocess.run(
            [*base, "log", key, "--all", "--json"], capture_output=True, env=env, text=True
        )
        records = json.loads(shown.stdout)["executions"] if shown.returncode == 0 else []
        ids = Counter(str(r["id"]) for r in records)
        if any(n > 1 for n in ids.values()):
            failures.append(f"{key}: an execution id twice in `runner log --all`")
        for record in records:
            counts[f"executions {record['status']}"] += 1
            if record.get("error") == "interrupted":
                counts["interrupted records"] += 1
            if record["status"] == "completed":
                completed[str(record["task"])] += 1
    counts["occurrences completed"] = sum(1 for t in completed if "/" in t)
    twice = [t for t, n in completed.items() if n > 1 and "/" in t]
    if twice:
        failures.append(f"completed more than once: {twice}")
    listed = subprocess.run([*base, "list", "--json"], capture_output=True, env=env, text=True)
    running = [r["id"] for r in json.loads(listed.stdout)["tasks"] if r["status"] == "running"]
    if running:
        failures.append(f"left running: {running}")
    for path, user in users.items():
        if path.exists() and split_text(path.read_text(encoding="utf-8"))[0] != user:
            failures.append(f"{path}: the user part changed")
    counts["task files checked"] = len(users)
    return counts, failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, FlakyApi(seed) as api:
        home = make_home(Path(tmp))
        env = {**os.environ, **api.env(), "TZ": "UTC"}
        users: dict[Path, str] = {}
        user_parts(home, users)
        started = time.monotonic()
        counts = Counter[str]()
        while time.monotonic() - started < args.seconds:
            chunk = min(20.0, args.seconds - (time.monotonic() - started))
            counts += soak(home, env, chunk, rng)
            user_parts(home, users)
        settle(home, env)
        found, failures = check(home, env, users)
    print(f"soak: {args.seconds:.0f} s, seed {seed}, {sum(counts.values())} commands")
    for name, value in sorted((counts + found).items()):
        print(f"  {name}: {value}")
    print(f"  API requests: {len(api.requests)}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("invariants: " + ("all held" if not failures else f"{len(failures)} failed"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
