"""The heartbeat: `runner watch` pings a URL while it is healthy, healthchecks.io style.

`heartbeat: {url_env: HC_URL, every: 5m}` makes the watch request the URL once at
start and then every period while its loop is alive, and `<url>/fail` when a run
fails after its last retry. A service outside the laptop then alerts when the pings
stop: the watch died, hung, or the laptop never woke. A ping that cannot be sent is
one warning per outage (and an entry in .runner/delivery.json), never more.
"""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from runner.clock import Clock, utc_iso
from runner.deliver.state import HEARTBEAT, record_result
from runner.deliver.targets import Redactor, TargetError, resolve_url
from runner.delivery_settings import HeartbeatSettings
from runner.events import Event, EventSink, Finished
from runner.home import Home


class Heartbeat:
    """Pings in a daemon thread; `fail()` reports a final failure at once."""

    def __init__(
        self,
        home: Home,
        settings: HeartbeatSettings,
        clock: Clock,
        healthy: Callable[[], bool],
        warn: Callable[[str], None],
    ) -> None:
        self.home = home
        self.settings = settings
        self.clock = clock
        self.healthy = healthy
        self.warn = warn
        self.pings = 0  # successful requests, for tests and the banner
        self._stop = threading.Event()
        self._url: str | None = None
        self._down = False  # warned about the current outage
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def fail(self) -> None:
        """A run failed after its last retry: `<url>/fail`, without holding anyone up."""
        threading.Thread(
            target=self.ping, args=("/fail",), name="heartbeat-fail", daemon=True
        ).start()

    def watching(self, emit: EventSink) -> EventSink:
        """`emit`, plus a `/fail` ping for every final failure it reports."""

        def wrapped(event: Event) -> None:
            if isinstance(event, Finished) and event.status == "failed" and event.final:
                self.fail()
            emit(event)

        return wrapped

    def _loop(self) -> None:
        while True:
            if self.healthy():
                self.ping("")
            if self._stop.wait(self.settings.every):
                return

    def ping(self, suffix: str) -> bool:
        url = self._resolve()
        if url is None:
            return False
        redact = Redactor(url, secret=self.settings.source.url is None)
        error: str | None = None
        try:
            request = _request(url.rstrip("/") + suffix if suffix else url)
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as answer:
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            error = redact(" ".join(str(reason).split()))[:200]
        self._report(error)
        return error is None

    def _resolve(self) -> str | None:
        with self._lock:
            if self._url is None:
                try:
                    self._url = resolve_url(self.settings.source, "heartbeat", http_only=True)
                except TargetError as exc:
                    self._report(exc.message)
                    return None
            return self._url

    def _report(self, error: str | None) -> None:
        record_result(self.home, HEARTBEAT, error is None, error, utc_iso(self.clock.now()))
        with self._lock:
            if error is None:
                self.pings += 1
                self._down = False
                return
            if self._down:
                return
            self._down = True
        self.warn(f"heartbeat not sent: {error}")


def _request(url: str) -> urllib.request.Request:
    """A GET of `url`; credentials in it (`https://user:pw@host/...`) go as basic auth,
    since urllib would take `user:pw@host` for the host name."""
    parts = urllib.parse.urlsplit(url)
    request = urllib.request.Request(url)
    if parts.username is not None or parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        request = urllib.request.Request(parts._replace(netloc=host).geturl())
        user = urllib.parse.unquote(parts.username or "")
        secret = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    request.add_header("User-Agent", "runner-heartbeat")
    return request
