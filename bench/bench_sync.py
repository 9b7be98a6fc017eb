"""`runner sync` vs `vdirsyncer sync`: 1,000 events on a local Radicale.

Both tools pull the same collection through a counting proxy on 127.0.0.1, so the
request counts are what went over the wire. vdirsyncer is installed from PyPI into
bench/out/vdirsyncer-venv on first use.

Targets: a first sync no slower than vdirsyncer's; a no-change sync at most half of
vdirsyncer's time, with O(changes) requests (a constant, here).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, PY, machine, median
from runner.calendars.davxml import sync_body
from tests.caldav_servers import (
    DavServer,
    event,
    running,
    start_radicale,
)
from tests.dav_proxy import CountingProxy
from tests.fakes import vevent

EVENTS = 1000
ROUNDS = 3
WORK = OUT / "sync"
VENV = OUT / "vdirsyncer-venv"
_added = itertools.count()


def vdirsyncer() -> Path:
    exe = VENV / "bin" / "vdirsyncer"
    if not exe.exists():
        print("installing vdirsyncer from PyPI into", VENV, file=sys.stderr)
        subprocess.run([PY, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "vdirsyncer"], check=True)
    return exe


def fill(server: DavServer, url: str) -> None:
    items = []
    for i in range(EVENTS):
        day = 1 + i % 28
        start = f"202611{day:02d}T{8 + i % 10:02d}0000Z"
        items.append(vevent(f"bench-{i:04d}-event", start, f"Bench event {i}", duration="PT30M"))
    server.put_collection(url, items)


def add_ten(server: DavServer, url: str) -> None:
    for _ in range(10):
        uid = f"added-{next(_added)}"
        server.put(url, f"{uid}.ics", event(uid, "Added"))


def runner_home(url: str) -> Path:
    home = WORK / "runner-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "runner.yaml").write_text(f"calendars:\n  - name: bench\n    url: {url}\n")
    return home


def vdirsyncer_config(url: str) -> Path:
    base = WORK / "vdirsyncer"
    shutil.rmtree(base, ignore_errors=True)
    (base / "cal").mkdir(parents=True)
    config = base / "config"
    config.write_text(
        f"""[general]
status_path = "{base}/status/"

[pair bench]
a = "bench_remote"
b = "bench_local"
collections = null
conflict_resolution = "a wins"

[storage bench_remote]
type = "caldav"
url = "{url}"
username = "user"
password = "x"

[storage bench_local]
type = "filesystem"
path = "{base}/cal/"
fileext = ".ics"
"""
    )
    return config


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    exe = vdirsyncer()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with running(start_radicale(WORK / "radicale")) as server:
        url = server.new_calendar()
        fill(server, url)
        # Radicale builds its item cache on the first listing after a bulk PUT, and
        # its sync-token history on the first sync-collection (~8 s here, once per
        # collection; phones keep it warm on a real server): pay both before measuring.
        path = url[url.index("/user/") :]
        server.request("PROPFIND", path, headers={"Depth": "1"})
        server.request("REPORT", path, sync_body(None), {"Depth": "1"})
        with CountingProxy(server.port) as proxy:
            proxied = proxy.url(url)
            results: dict[str, list[tuple[float, int]]] = {}

            def measure(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
                proxy.reset()
                seconds = timed(argv, env)
                results.setdefault(name, []).append((seconds, proxy.total))

            vdir_env = {**os.environ, "VDIRSYNCER_CONFIG": ""}
            for _ in range(ROUNDS):
                home = runner_home(proxied)
                runner = [PY, "-m", "runner", "--home", str(home), "sync"]
                measure("runner first sync", runner)
                measure("runner no-change sync", runner)
                measure("runner no-change sync", runner)
                add_ten(server, url)
                measure("runner sync of 10 new", runner)

                config = str(vdirsyncer_config(proxied))
                vdir = [str(exe), "-c", config, "-v", "ERROR", "sync"]
                subprocess.run(
                    [str(exe), "-c", config, "-v", "ERROR", "discover"],
                    check=True,
                    capture_output=True,
                    env=vdir_env,
                )
                measure("vdirsyncer first sync", vdir, vdir_env)
                measure("vdirsyncer no-change sync", vdir, vdir_env)
                measure("vdirsyncer no-change sync", vdir, vdir_env)
                add_ten(server, url)
                measure("vdirsyncer sync of 10 new", vdir, vdir_env)

            # both hold everything: the 1,000 and every batch of ten added so far
            total = EVENTS + 10 * 2 * ROUNDS
            subprocess.run(runner, check=True, capture_output=True)
            subprocess.run(vdir, check=True, capture_output=True, env=vdir_env)
            files = len(list((WORK / "runner-home" / "calendars" / "bench").glob("*.ics")))
            theirs = len(list((WORK / "vdirsyncer" / "cal").glob("*.ics")))
            assert files == theirs == total, (files, theirs, total)

    print(f"sync of {EVENTS} events from a local Radicale ({machine()}), median of {ROUNDS}")
    print(f"{'':28}{'seconds':>9}{'requests':>10}  (requests: the most in any round)")
    rows = {name: (median([s for s, _ in v]), max(n for _, n in v)) for name, v in results.items()}
    for name, (seconds, requests) in rows.items():
        print(f"{name:28}{seconds:9.2f}{requests:10d}")
    first = rows["runner first sync"][0] / rows["vdirsyncer first sync"][0]
    quiet = rows["runner no-change sync"][0] / rows["vdirsyncer no-change sync"][0]
    print(f"first sync: runner/vdirsyncer = {first:.2f} (target ≤ 1.0)")
    print(f"no-change sync: runner/vdirsyncer = {quiet:.2f} (target ≤ 0.5)")


if __name__ == "__main__":
    main()
