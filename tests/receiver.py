"""A local HTTP receiver for notifications and heartbeats, on 127.0.0.1 only.

Apprise's `json://127.0.0.1:PORT/path` posts `{"title", "message", "type", ...}`
here; a heartbeat GETs its URL. Every request is kept, in order. `hang` makes the
receiver hold each request without answering (a service that hangs); `status`
makes it answer with an error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: dict[str, Any] | None
    at: float  # time.time() when it arrived
    authorization: str | None = None  # the Authorization header, if any


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.hang = False
        self.status = 200
        self._arrived = threading.Condition()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/notify") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def http(self, path: str = "/ping") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.body is not None]

    def wait_for(self, count: int, timeout: float = 10.0, method: str = "POST") -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [r for r in self.requests if r.method == method]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._arrived.wait(left)

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _keep(self, body: dict[str, Any] | None) -> None:
                with receiver._arrived:
                    auth = self.headers.get("Authorization")
                    received = Received(self.command, self.path, body, time.time(), auth)
                    receiver.requests.append(received)
                    receiver._arrived.notify_all()
                if receiver.hang:
                    receiver._release.wait(60)
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                self._keep(body)

            def do_GET(self) -> None:
                self._keep(None)

            do_HEAD = do_GET

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()
