"""Time from a run's record to its notification at the receiver (target ≤ 0.5 s).

A task with `notify_on: [completed]` and a `json://` target on a local HTTP receiver
(the real Apprise library posting). The record's `finished` time (UTC, written just
before the record is appended) is compared with the moment the receiver got the POST.

- `runner run` in a fresh process: includes importing Apprise after the record.
- in-process runs after a first message (as in `runner watch`, whose workers keep
  Apprise imported once it has sent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PY, machine, median
from runner.brain.offline import OfflineBrain
from runner.clock import SystemClock
from runner.home import Home
from runner.init import init_home
from runner.run.executor import run_task
from runner.settings import load_settings

ROUNDS_CLI = 10
ROUNDS_WARM = 30


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.arrivals.append(time.time())
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.event.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self) -> float:
        if not self.event.wait(30):
            raise SystemExit("no notification arrived")
        self.event.clear()
        return self.arrivals[-1]


def finished_of(home: Home) -> float:
    last = (home.logs / "bench.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    stamp = json.loads(last)["finished"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def report(name: str, delays: list[float]) -> None:
    ms = sorted(d * 1000 for d in delays)
    print(
        f"{name}: median {median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms "
        f"({len(ms)} runs)"
    )


def main() -> None:
    receiver = Receiver()
    port = receiver.server.server_address[1]
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        init_home(home)
        home.settings_file.write_text(
            "notify:\n  bench: {url_env: BENCH_URL}\nnotify_default: [bench]\n", encoding="utf-8"
        )
        (home.tasks / "bench.yaml").write_text(
            "title: Bench\ninstructions: Say hi.\nnotify_on: [completed]\n", encoding="utf-8"
        )
        url = f"json://127.0.0.1:{port}/bench"
        env = {**os.environ, "BENCH_URL": url}
        cli: list[float] = []
        for _ in range(ROUNDS_CLI):
            subprocess.run(
                [PY, "-m", "runner", "--home", str(home.root), "run", "bench"],
                check=True,
                capture_output=True,
                env=env,
            )
            cli.append(receiver.wait() - finished_of(home))
        os.environ["BENCH_URL"] = url
        settings = load_settings(home.settings_file)
        brain, clock = OfflineBrain(), SystemClock()
        run_task(home, settings, "bench", brain, clock)  # the first message imports Apprise
        receiver.wait()
        warm: list[float] = []
        for _ in range(ROUNDS_WARM):
            run_task(home, settings, "bench", brain, clock)
            warm.append(receiver.wait() - finished_of(home))
    print(f"record → notification at the receiver ({machine()})")
    report("runner run (fresh process, imports Apprise)", cli)
    report("in-process, Apprise imported (as in watch)", warm)
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
