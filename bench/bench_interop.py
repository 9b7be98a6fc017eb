"""The CalDAV interop matrix: `runner sync` against every server that runs here.

For each server: a first sync of 20 events, an incremental one (2 added, 1 changed,
1 deleted), a no-change one, and one after the calendar was deleted and recreated at
the same URL with 3 new events. Each step checks that the snapshot holds exactly the
server's items (by UID and SUMMARY) and counts the requests on the wire through a
proxy on 127.0.0.1. Real servers: Radicale, Xandikos, Cyrus IMAP (when installed).
Emulated by the proxy in front of Radicale: a server that accepts a recreated
calendar's old token (DAViCal, SOGo) and one without sync-collection (etag mode).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from runner.calendars.sync import sync_all
from runner.home import Home
from runner.init import init_home
from runner.settings import load_settings
from tests.caldav_servers import DavServer, event, running, start_radicale, start_xandikos
from tests.cyrus_server import missing, start_cyrus, stop_cyrus
from tests.dav_proxy import CountingProxy

STEPS = ("first", "incremental", "no change", "recreated")


def cyrus_version() -> str:
    import subprocess

    out = subprocess.run(["dpkg-query", "-W", "cyrus-imapd"], capture_output=True, text=True)
    return out.stdout.split()[-1] if out.returncode == 0 else "?"


@contextlib.contextmanager
def servers(folder: Path) -> Iterator[list[tuple[str, str, DavServer, dict[str, bool]]]]:
    """(label, version, server, proxy options) for each row of the matrix."""
    radicale, xandikos = start_radicale(folder / "r"), start_xandikos(folder / "x")
    cyrus = None if missing() else start_cyrus()
    rows: list[tuple[str, str, DavServer, dict[str, bool]]] = [
        ("Radicale", version("radicale"), radicale, {}),
        ("Xandikos", version("xandikos"), xandikos, {}),
    ]
    if cyrus is not None:
        rows.append(("Cyrus IMAP", cyrus_version(), cyrus, {}))
    rows.append(("emulated: old token accepted (DAViCal, SOGo)", "-", radicale, {"stale": True}))
    rows.append(("emulated: no sync-collection", "-", radicale, {"no_sync": True}))
    try:
        yield rows
    finally:
        with running(radicale), running(xandikos):
            pass
        if cyrus is not None:
            stop_cyrus(cyrus)


server_state: dict[str, str] = {}


def row(label: str, server: DavServer, options: dict[str, bool], folder: Path) -> list[str]:
    home = Home(folder / f"home-{label[:8].replace(' ', '-')}-{len(server_state)}")
    init_home(home)
    url = server.new_calendar()
    server_state.clear()

    def put(name: str, summary: str) -> None:
        server.put(url, f"{name}.ics", event(f"{name}-{url[-8:-1]}", summary))
        server_state[name] = f"SUMMARY:{summary}"

    def delete(name: str) -> None:
        server.delete(url, f"{name}.ics")
        del server_state[name]

    def recreate() -> None:
        path = url.split(str(server.port), 1)[1]
        server.request("DELETE", path)
        server.request("MKCALENDAR", path)
        server_state.clear()
        for i in range(3):
            put(f"new{i}", f"New {i}")

    def first() -> None:
        for i in range(20):
            put(f"e{i}", f"Event {i}")

    def incremental() -> None:
        put("a1", "Added 1")
        put("a2", "Added 2")
        put("e0", "Changed")
        delete("e1")

    changes: list[Callable[[], None]] = [first, incremental, lambda: None, recreate]
    cells = []
    proxy = CountingProxy(
        server.port,
        refuse_sync=options.get("no_sync", False),
        stale_tokens=options.get("stale", False),
    )
    with proxy:
        login = server.login
        lines = ["calendars:", "  - name: agent", f"    url: {proxy.url(url)}"]
        lines += [f"    {k}: {v}" for k, v in login.items()]
        home.settings_file.write_text("\n".join(lines) + "\n")
        for change in changes:
            change()
            proxy.reset()
            result = sync_all(home, load_settings(home.settings_file)).calendars[0]
            local = {
                next(x for x in p.read_text().splitlines() if x.startswith("SUMMARY:"))
                for p in (home.calendars / "agent").glob("*.ics")
            }
            right = result.ok and local == set(server_state.values())
            verdict = "correct" if right else f"WRONG ({result.error or 'snapshot differs'})"
            requests = f"{proxy.total} req"
            cells.append(f"{verdict}, {requests}" + ("" if result.requests == proxy.total else "!"))
    return cells


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as rows:
        print(f"# runner sync interop, {machine()}")
        print("| server | version | " + " | ".join(STEPS) + " |")
        print("| --- | --- |" + " --- |" * len(STEPS))
        for label, ver, server, options in rows:
            cells = row(label, server, options, Path(tmp))
            print(f"| {label} | {ver} | " + " | ".join(cells) + " |")
            server.drop_calendars()


if __name__ == "__main__":
    main()
