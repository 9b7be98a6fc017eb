"""A counting, fault-injecting HTTP proxy on 127.0.0.1 in front of a real CalDAV server.

It plays the server behaviours met in the field that the real servers of the tests
do not show, on top of a real Radicale (or Xandikos, or Cyrus):

- refuse_sync: a server without RFC 6578 (sync-collection answered 403 supported-report);
- refuse_quick: the runner's plain quick request (quick.py, told by its User-Agent)
  gets a 503, so a sync goes through the caldav library;
- sync_answers: canned answers for the next sync-collection REPORTs (a 503, a 501 ...);
- stale_tokens: DAViCal and SOGo after a calendar was deleted and recreated: a token
  the server no longer knows is accepted, and only the items since "then" are listed
  (the proxy asks again without a token and passes that answer on as the reply);
- auth: Basic or Digest authentication done by the proxy itself (upstream needs none);
- close_after_401: SOGo's habit of closing a kept-alive connection after a 401 without
  saying `Connection: close`: the next request on that connection is read and the
  connection closed without an answer.

It is also a forward proxy: a request line with an absolute URL (from a client told
to use it through http_proxy) is sent on to the same upstream. Every request read
is counted, answered or not, so `total` is what went over the wire.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from runner.calendars.quick import USER_AGENT as QUICK_AGENT

_NO_SYNC = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:supported-report/></D:error>'
)
_TOKEN = re.compile(rb"<D:sync-token>[^<]*</D:sync-token>")
REALM, NONCE = "tests", "f00dfeed"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_ok(header: str, method: str, user: str, password: str) -> bool:
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
    if fields.get("username") != user or fields.get("nonce") != NONCE:
        return False
    ha1 = _md5(f"{user}:{fields.get('realm', '')}:{password}")
    ha2 = _md5(f"{method}:{fields.get('uri', '')}")
    if fields.get("qop"):
        parts = [ha1, NONCE, fields.get("nc", ""), fields.get("cnonce", ""), fields["qop"], ha2]
        return fields.get("response") == _md5(":".join(parts))
    return fields.get("response") == _md5(f"{ha1}:{NONCE}:{ha2}")


class CountingProxy:
    """127.0.0.1 reverse (and forward) proxy that counts requests by method."""

    def __init__(
        self,
        upstream_port: int,
        refuse_sync: bool = False,
        refuse_quick: bool = False,
        *,
        stale_tokens: bool = False,
        sync_answers: list[tuple[int, bytes]] | None = None,
        auth: tuple[str, str, str] | None = None,  # (basic | digest, user, password)
        close_after_401: bool = False,
    ) -> None:
        self.upstream_port = upstream_port
        self.refuse_sync = refuse_sync
        self.refuse_quick = refuse_quick
        self.stale_tokens = stale_tokens
        self.sync_answers = list(sync_answers or [])
        self.auth = auth
        self.close_after_401 = close_after_401
        self.drop_all = False  # every request read and left unanswered
        self.drop_all_after_401 = False  # ... from the first 401 on, on every connection
        self.refused = 0
        self.dropped = 0  # requests read and then left unanswered (close_after_401)
        self.counts: Counter[str] = Counter()
        self.connections = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            doomed = False  # this connection saw a 401: the next request is dropped

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.counts[self.command] += 1
                if self.doomed or proxy.drop_all:
                    with proxy._lock:
                        proxy.dropped += 1
                    self.close_connection = True
                    return
                status, headers, data = proxy.answer(self, body)
                self._answer(status, headers, data)
                if status == 401 and proxy.close_after_401:
                    self.doomed = True
                if status == 401 and proxy.drop_all_after_401:
                    proxy.drop_all = True

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = _forward
            do_OPTIONS = do_MKCALENDAR = do_HEAD = do_POST = do_PROPPATCH = _forward

        return Handler

    def answer(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body to send back for one request."""
        xml = {"Content-Type": "application/xml"}
        if self.refuse_quick and request.headers.get("User-Agent", "").startswith(QUICK_AGENT):
            with self._lock:
                self.refused += 1
            return 503, {"Content-Type": "text/plain"}, b"not now"
        challenge = self._challenge(request)
        if challenge is not None:
            return 401, challenge, b"who are you?"
        is_sync = request.command == "REPORT" and b"sync-collection" in body
        if is_sync and self.refuse_sync:
            return 403, xml, _NO_SYNC
        if is_sync and self.sync_answers:
            with self._lock:
                status, data = self.sync_answers.pop(0)
            plain = {"Content-Type": "text/plain"}
            return status, xml if data.startswith(b"<?xml") else plain, data
        status, headers, data = self._upstream(request, body)
        if is_sync and self.stale_tokens and status in (403, 409, 412) and b"sync-token" in data:
            return self._upstream(request, _TOKEN.sub(b"<D:sync-token/>", body))
        return status, headers, data

    def _challenge(self, request: BaseHTTPRequestHandler) -> dict[str, str] | None:
        if self.auth is None:
            return None
        kind, user, password = self.auth
        given = request.headers.get("Authorization", "")
        if kind == "basic":
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            if given == f"Basic {expected}":
                return None
            return {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        if given.startswith("Digest ") and _digest_ok(given, request.command, user, password):
            return None
        return {"WWW-Authenticate": f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth"'}

    def _upstream(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = request.path
        if path.startswith(("http://", "https://")):  # as a forward proxy
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        skip = {"host", "authorization", "proxy-connection", "proxy-authorization"}
        skip.add("content-length")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        if self.auth is None and "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        headers["Host"] = f"127.0.0.1:{self.upstream_port}"
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            conn.request(request.command, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            drop = ("transfer-encoding", "connection", "content-length", "upgrade")
            passed = {k: v for k, v in response.getheaders() if k.lower() not in drop}
        finally:
            conn.close()
        return response.status, passed, data

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
