"""Real CalDAV servers for tests and benches: Radicale and Xandikos on 127.0.0.1.

Servers are session-scoped (each start costs a second); every test makes its own
calendar collection on them. Events are put and deleted with plain HTTP, so the
code under test is the only CalDAV client involved. CountingProxy sits between a
client and a server to count the requests on the wire, and can play a server
without RFC 6578 sync-collection support.
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
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from runner.calendars.quick import USER_AGENT as QUICK_AGENT

BIN = Path(sys.executable).parent
_names = itertools.count(1)


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


HEADER = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n"


def vevent(uid: str, summary: str = "Event", start: str = "20261126T080000Z") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\n"
        f"DURATION:PT30M\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def event(
    uid: str, summary: str = "Event", start: str = "20261126T080000Z", extra: str = ""
) -> str:
    """A small VCALENDAR with one VEVENT (plus `extra` components, e.g. an override)."""
    return f"{HEADER}{vevent(uid, summary, start)}{extra}END:VCALENDAR\r\n"


@dataclass
class DavServer:
    """A running server; `parent` is the URL under which calendars are made."""

    kind: str
    port: int
    parent_path: str
    username: str = "user"
    password: str = "x"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

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
        return f"http://127.0.0.1:{self.port}{path}"

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
        body = HEADER + "".join(vevents) + "END:VCALENDAR\r\n"
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


# -- a counting reverse proxy -------------------------------------------------------

_NO_SYNC = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:supported-report/></D:error>'
)


class CountingProxy:
    """127.0.0.1 reverse proxy that counts requests by method.

    With refuse_sync, a sync-collection REPORT is answered 403 DAV:supported-report,
    as a server without RFC 6578 does. With refuse_quick, the runner's plain quick
    request (runner/calendars/quick.py, told apart by its User-Agent) gets a 503, so
    that the sync goes through caldav. Everything else passes through.
    """

    def __init__(
        self, upstream_port: int, refuse_sync: bool = False, refuse_quick: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.refuse_sync = refuse_sync
        self.refuse_quick = refuse_quick
        self.refused = 0
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.counts[self.command] += 1
                if proxy.refuse_quick and self.headers.get("User-Agent", "").startswith(
                    QUICK_AGENT
                ):
                    with proxy._lock:
                        proxy.refused += 1
                    self._answer(503, {"Content-Type": "text/plain"}, b"not now")
                    return
                if proxy.refuse_sync and self.command == "REPORT" and b"sync-collection" in body:
                    self._answer(403, {"Content-Type": "application/xml"}, _NO_SYNC)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"127.0.0.1:{proxy.upstream_port}"
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    passed = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")
                    }
                finally:
                    conn.close()
                self._answer(response.status, passed, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = _forward
            do_OPTIONS = do_MKCALENDAR = do_HEAD = do_POST = do_PROPPATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def url(self, upstream_url: str) -> str:
        """The same URL, reached through the proxy."""
        return urlsplit(upstream_url)._replace(netloc=f"127.0.0.1:{self.port}").geturl()

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- pytest fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with running(start_radicale(tmp_path_factory.mktemp("radicale"))) as server:
        yield server


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with running(start_xandikos(tmp_path_factory.mktemp("xandikos"))) as server:
        yield server


@pytest.fixture(params=["radicale", "xandikos"])
def dav_server(request: pytest.FixtureRequest) -> DavServer:
    """Each test using this runs once against Radicale and once against Xandikos."""
    server: DavServer = request.getfixturevalue(request.param)
    return server


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
