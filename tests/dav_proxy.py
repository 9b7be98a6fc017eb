"""A counting, fault-injecting HTTP proxy on 127.0.0.1 in front of a real CalDAV server."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from runner.calendars.quick import USER_AGENT as QUICK_AGENT

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
