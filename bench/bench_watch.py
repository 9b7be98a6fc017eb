"""bench_watch: how promptly and how cheaply `runner watch` works.

Runs the real `runner watch` in a subprocess against a local fake Messages API
(tests/fake_anthropic.py, reached by the real anthropic SDK through
ANTHROPIC_BASE_URL) and prints:

- fire latency: an event's due time → its request arriving at the API, median and
  max over 20 events, with 300 other series loaded;
- new file → API: an event already due, in a newly written file (rename-save);
- idle CPU seconds per minute with 300 series loaded, before and after runs
  (utime + stime from /proc/<pid>/stat over 30 s);
- resident memory (VmRSS) with 3,000 series loaded, cold start and warm restart.

Targets: median ≤ 0.1 s, max ≤ 0.5 s; new file → API ≤ 1 s; idle ≤ 0.1 CPU-s per
minute; RSS ≤ 150 MB with 3,000 series.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fake_anthropic import FakeAnthropic  # noqa: E402

IDLE_SECONDS = float(os.environ.get("BENCH_IDLE", "30"))
EVENTS = 20
NEW_FILES = 5
CLK_TCK = os.sysconf("SC_CLK_TCK")


class TimedAPI(FakeAnthropic):
    """The fake API, noting when each request's title arrived (wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}

    def _next(self, path: str) -> Any:
        now = time.time()
        with self._lock:
            body = self.requests[-1].body
        match = re.search(r"Title: ([A-Za-z0-9-]+)", json.dumps(body))
        if match and path == "/v1/messages":
            self.arrived.setdefault(match[1], now)
        return super()._next(path)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(uid: str, start: datetime, title: str, rrule: str | None = None) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{stamp(start)}",
        "DURATION:PT15M",
        f"SUMMARY:{title}",
        "DESCRIPTION:Say hi in one line.",
    ]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    return [*lines, "END:VEVENT"]


def calendar(*events: list[str]) -> str:
    body = [line for event in events for line in event]
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", *body,
                        "END:VCALENDAR", ""])  # fmt: skip


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def make_home(root: Path, series: int) -> Path:
    """A home with `series` daily series, none due during the bench (first in 1 h+)."""
    folder = root / "calendars" / "load"
    folder.mkdir(parents=True)
    (root / "calendars" / "bench").mkdir()
    (root / "tasks").mkdir()
    (root / "logs").mkdir()
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    for n in range(series):
        start = base + timedelta(seconds=7 * n)
        text = calendar(vevent(f"load-{n}@bench", start, f"load-{n}", "FREQ=DAILY"))
        (folder / f"load-{n:04d}.ics").write_text(text, encoding="utf-8")
    return root


class Watch:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        full.update(env)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "--home", str(home), "watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=full,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if json.loads(line)["event"] == "started":
                break
        self.startup = time.monotonic() - self.started_at
        # Drain the rest in the background so the pipe never fills.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def rss_mb(self, field: str = "VmRSS") -> float:
        """Resident memory now (VmRSS) or at its peak so far (VmHWM), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def idle_cpu_per_minute(self, seconds: float) -> float:
        before = self.cpu_seconds()
        time.sleep(seconds)
        return (self.cpu_seconds() - before) * 60 / seconds

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def phase_300(tmp: Path) -> dict[str, Any]:
    home = make_home(tmp / "home300", 300)
    out: dict[str, Any] = {}
    with TimedAPI() as api:
        watch = Watch(home, api.env())
        out["startup_300"] = watch.startup
        time.sleep(2)  # let the first plan settle
        out["idle_before"] = watch.idle_cpu_per_minute(IDLE_SECONDS)

        # 20 events, one a second, written as one new calendar file 3 s ahead.
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        due = {f"lat-{n:02d}": first + timedelta(seconds=n) for n in range(EVENTS)}
        events = [vevent(f"{title}@bench", when, title) for title, when in due.items()]
        write_atomic(home / "calendars" / "bench" / "latency.ics", calendar(*events))
        wait_until(lambda: all(t in api.arrived for t in due), EVENTS + 15)
        out["latency"] = [api.arrived[t] - due[t].timestamp() for t in due if t in api.arrived]

        # A new file whose event is already due: write → request at the API.
        new_file: list[float] = []
        for n in range(NEW_FILES):
            title = f"new-{n}"
            now = datetime.now(UTC).replace(microsecond=0)
            text = calendar(vevent(f"{title}@bench", now, title))
            write_atomic(home / "calendars" / "bench" / f"{title}.ics", text)
            written = time.time()
            if wait_until(lambda t=title: t in api.arrived, 10):
                new_file.append(api.arrived[title] - written)
            time.sleep(0.5)
        out["new_file"] = new_file

        time.sleep(2)
        out["idle_after"] = watch.idle_cpu_per_minute(IDLE_SECONDS)
        out["rss_300"] = watch.rss_mb()
        out["exit_300"] = watch.stop()
    return out


def phase_3000(tmp: Path) -> dict[str, Any]:
    home = make_home(tmp / "home3000", 3000)
    out: dict[str, Any] = {}
    with TimedAPI() as api:  # the anthropic brain: its SDK is part of the footprint
        for run in ("cold", "warm"):  # warm: the parse cache under .runner/ from the cold run
            watch = Watch(home, api.env())
            out[f"startup_{run}"] = watch.startup
            time.sleep(3)
            out[f"rss_{run}"] = watch.rss_mb()
            out[f"peak_{run}"] = watch.rss_mb("VmHWM")
            out[f"exit_{run}"] = watch.stop()
    return out


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as name:
        tmp = Path(name)
        a = phase_300(tmp)
        b = phase_3000(tmp)
    lat = a["latency"]
    print(f"watch startup, 300 series (cold, anthropic brain): {a['startup_300']:.2f} s")
    if lat:
        print(
            f"fire latency, due → request at the API ({len(lat)}/{EVENTS} events, 300 series "
            f"loaded): median {statistics.median(lat):.3f} s, max {max(lat):.3f} s, "
            f"min {min(lat):.3f} s  (targets: median ≤ 0.1 s, max ≤ 0.5 s)"
        )
        print("  each: " + " ".join(f"{x:.3f}" for x in lat))
    else:
        print("fire latency: no request arrived")
    nf = a["new_file"]
    if nf:
        print(
            f"new file (rename-save, event already due) → request at the API ({len(nf)}/"
            f"{NEW_FILES}): median {statistics.median(nf):.3f} s, max {max(nf):.3f} s"
            "  (target ≤ 1 s)"
        )
    print(
        f"idle CPU, 300 series: {a['idle_before']:.3f} CPU-s/min before runs, "
        f"{a['idle_after']:.3f} after {len(lat) + len(nf)} runs  (target ≤ 0.1)"
    )
    print(f"RSS, 300 series after runs: {a['rss_300']:.0f} MB")
    print(
        f"3,000 series: startup {b['startup_cold']:.2f} s cold, {b['startup_warm']:.2f} s warm; "
        f"RSS {b['rss_cold']:.0f} MB cold (peak {b['peak_cold']:.0f}), "
        f"{b['rss_warm']:.0f} MB warm (peak {b['peak_warm']:.0f})  (target ≤ 150 MB)"
    )
    codes = {a["exit_300"], b["exit_cold"], b["exit_warm"]}
    print(f"exit codes on SIGTERM: {sorted(codes)}")


if __name__ == "__main__":
    main()
