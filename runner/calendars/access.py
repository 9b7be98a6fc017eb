"""Where a CalDAV calendar lives and how to log in to it.

The password comes from `password_env` or `password_cmd` at the moment it is needed,
is handed to the HTTP client and nothing else: never written, never printed. This
module imports no HTTP library, so cheap paths (the quiet check) stay cheap.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

from runner.settings import CalendarSettings

TIMEOUT = 60  # seconds, per HTTP request and for password_cmd


class RemoteError(Exception):
    """One calendar could not be synced; the message names the cause only."""


def collection_url(cal: CalendarSettings) -> str:
    assert cal.url is not None
    return cal.url if cal.url.endswith("/") else cal.url + "/"


def public_url(url: str) -> str:
    """The URL without any user:password part, for messages and JSON."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def password_for(cal: CalendarSettings) -> str | None:
    if cal.password_env:
        value = os.environ.get(cal.password_env)
        if not value:
            raise RemoteError(
                f"the environment variable {cal.password_env} (password_env) is not set"
            )
        return value
    if cal.password_cmd:
        try:
            done = subprocess.run(
                cal.password_cmd,
                shell=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"password_cmd did not finish within {TIMEOUT}s") from None
        if done.returncode != 0:
            # Its output is not shown: it may hold the secret.
            raise RemoteError(f"password_cmd failed with exit status {done.returncode}")
        value = done.stdout.strip()
        if not value:
            raise RemoteError("password_cmd printed no password")
        return value
    return None
