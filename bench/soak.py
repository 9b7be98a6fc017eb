"""Soak: SIGKILL tick, run, compress and watch at random moments, then check every
invariant (issue 13). `just soak [SECONDS]`; CI runs a short one.

A home with three recurring series (every minute, half an hour of backlog,
catch_up all), a hand-written task in one of the series, low compression thresholds
(compress past 3 executions, keep 1), and the anthropic brain against the fake
Messages API (tests/fake_anthropic.py, reached by the real SDK) with random delays
and 529s. Two tasks use the file tools: `hello` (run by `runner run hello`) and the
occurrences of the third series (its events say `task: writer`) may read `shared/`
and write `shared/out/`. For them the fake API plays a model: first a read_file and
three writes it may not make (`../escaped.md`, `tasks/evil.yaml`, `shared/evil.md`),
then a write_file of a 64 KB note into `shared/out/` ending in its own SHA-256, then
a final text; so kills land mid tool loop too. Commands start at random and most are
killed with SIGKILL after a random moment. Then a few undisturbed commands settle the
home (the final recovery pass), and the script checks:

- each occurrence completed at most once (live log and archive, ids counted once);
- nothing left `running`;
- every whole line of every live log and archive parses as a record;
- every execution id at most once in its live log, and once in `runner log --all`;
- the user part of every task file unchanged since it was first written;
- no step journal (`.runner/runs/<execution id>.jsonl`) left whose execution no
  record accounts for (journal.py: recovery reads it into the `interrupted` record);
- no file written outside the granted folder (the whole temp folder is compared
  with its first listing; only `shared/out/` and the runner's own folders may gain
  files);
- every note in `shared/out/` whole: its SHA-256 line matches its body (atomic
  writes). A temp file left by a kill mid-write is counted, not failed.

Prints the counts; exits 1 if an invariant failed.
"""

from __future__ import annotations

import argparse
import hashlib
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
from tests.fake_anthropic import FakeAnthropic, Reply, ToolCall

UIDS = ("soak-a@example.com", "soak-b@example.com", "soak-c@example.com")
DESCRIPTIONS = dict.fromkeys(UIDS, "Count the runs so far.") | {UIDS[2]: "task: writer"}
GRANT = 'tools:\n  read: ["shared/**"]\n  write: ["shared/out/**"]\n'
COMMANDS = ("tick", "run", "compress", "watch")


class FlakyApi(FakeAnthropic):
    """Random delays (0–0.4 s) and a 529 (overloaded) one time in six; to a request
    that offers write_file, the next step of the tool script (module docstring)."""

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

    def _reply_for(self, path: str, body: dict[str, Any]) -> Reply:
        reply = self._next(path)
        tools = {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)}
        if reply.status != 200 or path.endswith("/count_tokens") or "write_file" not in tools:
            return reply
        with self._lock:
            self._calls += 1
            n = self._calls
        rounds = tool_rounds(body.get("messages") or [])
        if rounds == 0:
            calls = [
                ToolCall("read_file", {"path": "shared/in.md"}),
                ToolCall("write_file", {"path": "../escaped.md", "content": "out"}),
                ToolCall("write_file", {"path": "tasks/evil.yaml", "content": "x: 1\n"}),
                ToolCall("write_file", {"path": "shared/evil.md", "content": "not granted"}),
            ]
        elif rounds == 1:
            calls = [
                ToolCall("write_file", {"path": f"shared/out/note-{n}.md", "content": note(n)})
            ]
        else:
            return Reply(text=f"Wrote note {n}.", delay=reply.delay)
        for i, call in enumerate(calls):
            call.id = f"toolu_soak_{n}_{i}"
        return Reply(text="", tool_calls=calls, delay=reply.delay)


def tool_rounds(messages: list[Any]) -> int:
    """The tool round trips of the loop so far: trailing tool_result messages."""
    rounds = 0
    for message in reversed(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") == "assistant":
            continue
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        ):
            rounds += 1
            continue
        break
    return rounds


def note(n: int) -> str:
    """A 64 KB note that ends in the SHA-256 of what comes before it."""
    body = "".join(f"note {n}, line {i}: {'x' * 50}\n" for i in range(1000))
    return body + f"sha256 {hashlib.sha256(body.encode()).hexdigest()}\n"


def note_whole(text: str) -> bool:
    body, _, last = text.rstrip("\n").rpartition("\n")
    return last == f"sha256 {hashlib.sha256((body + chr(10)).encode()).hexdigest()}"


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
            f"SUMMARY:Soak {uid[5]}\r\nDESCRIPTION:{DESCRIPTIONS[uid]}\r\n"
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
        f"key: {series_key(UIDS[0])}\n" + GRANT,
        encoding="utf-8",
    )
    (home.tasks / "writer.yaml").write_text(
        'title: "Writer"\ninstructions: "Read shared/in.md, write a note."\n' + GRANT,
        encoding="utf-8",
    )
    (home.root / "shared" / "out").mkdir(parents=True)
    (home.root / "shared" / "in.md").write_text("Notes to read.\n", encoding="utf-8")
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
    records_seen: list[dict[str, Any]] = []
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
        if shown.returncode != 0:
            failures.append(f"{key}: `runner log --all` failed: {shown.stderr.strip()}")
        records_seen += records
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
    failures += check_tools(home, records_seen, counts)
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


HOSTILE = {"../escaped.md", "tasks/evil.yaml", "shared/evil.md"}
RUNNER_OWN = (".runner", "logs", ".git", "calendars")


def files_outside_grant(root: Path, home: Home) -> set[str]:
    """The files under `root` (the soak's temp folder), but for those the runner
    writes itself (its own folders, occurrence files) and the granted `shared/out/`."""
    series = {series_key(uid) for uid in UIDS}
    found: set[str] = set()
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        if path.is_relative_to(home.root):
            parts = path.relative_to(home.root).parts
            if parts[0] in RUNNER_OWN or parts[:2] == ("shared", "out"):
                continue
            if parts[0] == "tasks" and len(parts) == 3 and parts[1] in series:
                continue
        found.add(str(path.relative_to(root)))
    return found


def check_tools(home: Home, records: list[dict[str, Any]], counts: Counter[str]) -> list[str]:
    """The file tools' invariants: journals accounted for, hostile writes refused,
    notes whole (files outside the grant are compared in main)."""
    failures: list[str] = []
    ids = {str(r["id"]) for r in records}
    for journal in sorted((home.state / "runs").glob("*.jsonl")):
        if journal.stem in ids:
            counts["step journals left (their record written)"] += 1
        else:
            failures.append(f"{journal}: a step journal no record accounts for")
    for record in records:
        steps = record.get("steps") or []
        counts["tool steps"] += len(steps)
        counts["tool steps refused"] += sum(1 for s in steps if s.get("is_error"))
        if steps and record.get("error") == "interrupted":
            counts["interrupted mid tool loop (steps kept)"] += 1
        for step in steps:
            target = (step.get("input") or {}).get("path")
            if step.get("tool") == "write_file" and target in HOSTILE and not step.get("is_error"):
                failures.append(f"{record['id']}: write_file {target} was not refused")
    for path in sorted((home.root / "shared" / "out").iterdir()):
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            counts["temp files left by a kill mid-write"] += 1
        elif note_whole(path.read_text(encoding="utf-8", errors="replace")):
            counts["notes written, whole"] += 1
        else:
            failures.append(f"{path}: a note that is not whole")
    return failures


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
        before = files_outside_grant(Path(tmp), home)
        started = time.monotonic()
        counts = Counter[str]()
        while time.monotonic() - started < args.seconds:
            chunk = min(20.0, args.seconds - (time.monotonic() - started))
            counts += soak(home, env, chunk, rng)
            user_parts(home, users)
        settle(home, env)
        found, failures = check(home, env, users)
        for path in sorted(files_outside_grant(Path(tmp), home) - before):
            failures.append(f"{path}: written outside the granted folder")
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
