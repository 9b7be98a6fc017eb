"""Real CalDAV servers for tests and benches: Radicale and Xandikos on 127.0.0.1
(Cyrus IMAP, the third, is in cyrus_server.py).

Servers are session-scoped (each start costs a second); every test makes its own
calendar collection on them. Events are put and deleted with plain HTTP, so the
code under test is the only CalDAV client involved. The proxy that counts requests
and injects faults is in dav_proxy.py.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.fakes import calendar_text, vevent

BIN = Path(sys.executable).parent
_names = itertools.count(1)
PASSWORD_ENV = "DAV_TEST_PASSWORD"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def event(
    uid: str, summary: str = "Event", start: str = "20261126T080000Z", extra: str = ""
) -> str:
    """A small VCALENDAR with one VEVENT (plus `extra` components, e.g. an override)."""
    return calendar_text(vevent(uid, start, summary, duration="PT30M"), extra)


@dataclass
class DavServer:
    """A running server; `parent` is the URL under which calendars are made."""

    kind: str
    port: int
    parent_path: str
    username: str = "user"
    password: str = "x"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    folder: Path | None = None  # a temp folder of its own to remove after (Cyrus)
    made: list[str] = field(default_factory=list)  # calendar paths made by new_calendar

    @property
    def login(self) -> dict[str, str]:
        """The runner.yaml keys to reach it: Cyrus needs a password, the others none."""
        if self.kind != "cyrus":
            return {}
        os.environ[PASSWORD_ENV] = self.password  # read by the runner, in or out of process
        return {"username": self.username, "password_env": PASSWORD_ENV}

    @property
    def parent(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.parent_path}"

    def request(
        self, method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        data = body.encode("utf-8") if isinstance(body, str) else body
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        all_headers = {"Authorization": f"Basic {token}", **(headers or {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def new_calendar(self) -> str:
        """A fresh, empty calendar collection; returns its URL."""
        if self.kind == "radicale":  # Radicale makes the principal folder on first visit
            self.request("PROPFIND", self.parent_path, headers={"Depth": "0"})
        path = f"{self.parent_path}test-{os.getpid()}-{next(_names)}/"
        status, body = self.request("MKCALENDAR", path)
        assert status == 201, (status, body)
        self.made.append(path)
        return f"http://127.0.0.1:{self.port}{path}"

    def drop_calendars(self) -> None:
        """Delete the calendars made so far: Cyrus holds a UID unique across all of a
        user's calendars, so the next test may reuse the UIDs."""
        while self.made:
            self.request("DELETE", self.made.pop())

    def put(self, calendar: str, name: str, ics: str) -> None:
        status, body = self.request(
            "PUT",
            urlsplit(calendar).path + quote(name),
            ics,
            {"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert status in (201, 204), (status, body)

    def delete(self, calendar: str, name: str) -> None:
        status, body = self.request("DELETE", urlsplit(calendar).path + quote(name))
        assert status in (200, 204), (status, body)

    def put_many(self, calendar: str, items: dict[str, str]) -> None:
        for name, ics in items.items():
            self.put(calendar, name, ics)

    def put_collection(self, calendar: str, vevents: list[str]) -> None:
        """Radicale only: one PUT of a whole VCALENDAR, split into one item per UID."""
        assert self.kind == "radicale"
        body = calendar_text(*vevents)
        status, answer = self.request(
            "PUT", urlsplit(calendar).path, body, {"Content-Type": "text/calendar"}
        )
        assert status in (201, 204), (status, answer)


def start_radicale(folder: Path, htpasswd: Path | None = None) -> DavServer:
    port = free_port()
    auth = ["--auth-type", "none"]
    if htpasswd is not None:
        auth = ["--auth-type", "htpasswd", "--auth-htpasswd-filename", str(htpasswd)]
        auth += ["--auth-htpasswd-encryption", "plain"]
    command = [sys.executable, "-m", "radicale", "--config", ""]
    command += ["--server-hosts", f"127.0.0.1:{port}"]
    command += ["--storage-filesystem-folder", str(folder / "storage"), *auth]
    return _start("radicale", command, port, "/user/", folder)


def start_xandikos(folder: Path) -> DavServer:
    port = free_port()
    command = [str(BIN / "xandikos"), "serve", "--defaults", "-d", str(folder / "storage")]
    command += ["-l", "127.0.0.1", "-p", str(port)]
    return _start("xandikos", command, port, "/user/calendars/", folder)


def _start(kind: str, command: list[str], port: int, parent: str, folder: Path) -> DavServer:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc, log)
    return DavServer(kind, port, parent, proc=proc)


def stop(server: DavServer) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextlib.contextmanager
def running(server: DavServer) -> Iterator[DavServer]:
    try:
        yield server
    finally:
        stop(server)


# -- pytest fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with running(start_radicale(tmp_path_factory.mktemp("radicale"))) as server:
        yield server


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with running(start_xandikos(tmp_path_factory.mktemp("xandikos"))) as server:
        yield server


@pytest.fixture(params=["radicale", "xandikos", "cyrus"])
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    """Each test using this runs against Radicale, Xandikos and Cyrus IMAP."""
    server: DavServer = request.getfixturevalue(request.param)
    yield server
    server.drop_calendars()


@pytest.fixture(scope="module")
def radicale_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    """Radicale with password auth: user `user`, password in `.password`."""
    folder = tmp_path_factory.mktemp("radicale-auth")
    password = "s3cret-" + base64.b16encode(os.urandom(6)).decode().lower()
    htpasswd = folder / "htpasswd"
    htpasswd.write_text(f"user:{password}\n")
    server = start_radicale(folder, htpasswd)
    server.password = password
    with running(server):
        yield server
