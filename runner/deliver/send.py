"""Sending one message to one target through Apprise, in bounded time.

Apprise is imported here, on the first message, never by a command that sends
nothing. Each send runs in a helper thread that the caller waits for at most the
target's timeout (the HTTP connect and read timeouts are set to it too); a target
that hangs is abandoned, reported, and never holds up the runner. What Apprise logs
about a failure is captured per thread and becomes the error, with the URL and its
parts redacted; Apprise's own logging never reaches the terminal.

Desktop: `dbus://` (and kde, qt, glib, gio, gnome) needs Python bindings that are
often missing; then `notify-send` (libnotify) is used when it is on the PATH.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from runner.deliver.message import Message
from runner.deliver.targets import Redactor

DESKTOP_SCHEMES = frozenset({"dbus", "kde", "qt", "glib", "gio", "gnome"})
_HTTP_PARAMS = ("cto", "rto")  # Apprise's connect and read timeouts, per URL


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    via: str = "apprise"


class _Capture(logging.Handler):
    """Apprise's warnings and errors, kept per thread while a send is running."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found: list[str] | None = getattr(self.local, "messages", None)
        if found is not None:
            found.append(record.getMessage())


_capture: _Capture | None = None
_capture_lock = threading.Lock()


def _apprise_logger() -> _Capture:
    global _capture
    with _capture_lock:
        if _capture is None:
            _capture = _Capture()
            logger = logging.getLogger("apprise")
            logger.addHandler(_capture)
            logger.propagate = False  # never on the user's terminal (it may name a host)
        return _capture


def with_timeouts(url: str, timeout: float) -> str:
    """`url` with Apprise's cto/rto set to `timeout`, unless the user set them."""
    parts = urlsplit(url)
    given = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    # Appended as text: re-encoding the user's own parameters could change them.
    extra = [f"{name}={timeout:g}" for name in _HTTP_PARAMS if name not in given]
    query = "&".join([parts.query, *extra] if parts.query else extra)
    return parts._replace(query=query).geturl()


def send(url: str, message: Message, notify_type: str, timeout: float, secret: bool) -> SendResult:
    """Send `message` to `url`; never raises, never waits much longer than `timeout`."""
    redact = Redactor(url, secret)
    box: dict[str, Any] = {}
    started = time.monotonic()

    def work() -> None:
        capture = _apprise_logger()
        capture.local.messages = []
        try:
            box["result"] = _send_apprise(url, message, notify_type, timeout)
        except Exception as exc:  # a plugin's bug must not end the run's process
            box["result"] = SendResult(False, f"{type(exc).__name__}: {exc}")
        box["logged"] = list(capture.local.messages)
        capture.local.messages = None

    helper = threading.Thread(target=work, name="notify", daemon=True)
    helper.start()
    helper.join(timeout + 1.0)
    took = time.monotonic() - started
    if helper.is_alive():
        return SendResult(False, f"no answer within {timeout:g}s", took)
    result: SendResult = box["result"]
    error = result.error
    if not result.ok and error is None:
        logged = [m for m in box.get("logged", []) if m.strip()]
        error = logged[-1] if logged else "the service did not accept the message"
    if error is not None:
        error = redact(" ".join(error.split()))[:300]
    return SendResult(result.ok, error, took, result.via)


def prewarm() -> threading.Thread:
    """Import Apprise and load its plugins in the background, while the brain thinks:
    a message that is sure to follow then leaves at once after the run's record."""

    def work() -> None:
        import apprise

        apprise.Apprise.instantiate("json://localhost/")  # the first lookup loads plugins

    thread = threading.Thread(target=work, name="apprise-import", daemon=True)
    thread.start()
    return thread


def _send_apprise(url: str, message: Message, notify_type: str, timeout: float) -> SendResult:
    import apprise  # heavy (about a second): only when something is to be sent

    scheme = urlsplit(url).scheme.lower()
    service = apprise.Apprise.instantiate(with_timeouts(url, timeout))
    if service is None:
        if scheme in DESKTOP_SCHEMES:
            return _notify_send(message, timeout)
        return SendResult(False, f"Apprise cannot use this {scheme}:// URL (check its form)")
    notifier = apprise.Apprise()
    notifier.add(service)
    sent = notifier.notify(body=message.body, title=message.title, notify_type=notify_type)
    if sent:
        return SendResult(True)
    # Apprise 2 returns its captured log with the result (it may send from a thread of
    # its own, out of reach of the per-thread capture); Apprise 1 returns a bool.
    logs = getattr(sent, "logs", None)
    if callable(logs):
        said = [str(e.message) for e in logs() if str(getattr(e, "level", "")) != "DEBUG"]
        if said:
            return SendResult(False, said[-1])
    return SendResult(False)


def _notify_send(message: Message, timeout: float) -> SendResult:
    """The desktop without D-Bus Python bindings: libnotify's command line tool."""
    program = shutil.which("notify-send")
    if program is None:
        return SendResult(
            False,
            "no desktop notifier here: dbus:// needs the dbus-python bindings "
            "or notify-send (libnotify) on the PATH",
            via="notify-send",
        )
    try:
        done = subprocess.run(
            [program, "--app-name=runner", message.title, message.body],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SendResult(
            False, f"notify-send did not finish within {timeout:g}s", via="notify-send"
        )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return SendResult(False, f"notify-send failed: {why}", via="notify-send")
    return SendResult(True, via="notify-send")
