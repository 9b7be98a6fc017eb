"""Where a CalDAV calendar lives and how to log in to it.

The password comes from `password_env` or `password_cmd` at the moment it is needed,
is handed to the HTTP client and nothing else: never written, never printed. This
module imports no HTTP library, so cheap paths (the quiet check) stay cheap.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from runner.secretcmd import SecretCommandError, run_secret_command
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
            return run_secret_command(cal.password_cmd, "password_cmd", "password", TIMEOUT)
        except SecretCommandError as exc:
            raise RemoteError(str(exc)) from None
    return None
