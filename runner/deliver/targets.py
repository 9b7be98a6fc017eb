"""A target's URL, read at the moment of sending, and kept out of every message.

`url_env` and `url_cmd` URLs are secrets as a whole (a webhook, a topic, a token in
the path): they are handed to the sender and nothing else. Any text that might echo
one (an error from a library) goes through `Redactor` first.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from runner.delivery_settings import UrlSource, url_problem
from runner.errors import RunnerError
from runner.secretcmd import SecretCommandError, run_secret_command

CMD_TIMEOUT = 30  # seconds for url_cmd


class TargetError(RunnerError):
    """A target whose URL cannot be had; the message never holds the URL."""


def resolve_url(source: UrlSource, where: str, *, http_only: bool = False) -> str:
    """The URL of `source`; raises TargetError naming `where` and the cause only."""
    if source.url is not None:
        return source.url
    if source.url_env is not None:
        value = os.environ.get(source.url_env, "").strip()
        if not value:
            raise TargetError(f"{where}: the environment variable {source.url_env} is not set")
    else:
        assert source.url_cmd is not None
        value = _from_command(source.url_cmd, where)
    problem = _scheme_problem(value, http_only)
    if problem is not None:
        raise TargetError(f"{where}: the URL from {source.described} {problem}")
    return value


def _from_command(command: str, where: str) -> str:
    try:
        return run_secret_command(command, "url_cmd", "URL", CMD_TIMEOUT)
    except SecretCommandError as exc:
        raise TargetError(f"{where}: {exc}") from None


def _scheme_problem(url: str, http_only: bool) -> str | None:
    """Only the scheme is judged here: a secret is expected in these URLs."""
    problem = url_problem(url, http_only=http_only)
    if problem is not None and ("scheme" in problem or "not a URL" in problem):
        return problem
    return None


class Redactor:
    """Replaces a secret URL and every distinctive part of it with `***`."""

    def __init__(self, url: str, secret: bool) -> None:
        pieces = {url} if secret else set()
        parts = urlsplit(url)
        if parts.password:
            pieces.add(parts.password)
            pieces.add(unquote(parts.password))
        if secret:
            pieces.add(url.split("://", 1)[-1])
            pieces.update(p for p in re.split(r"[/:@?&=#]+", url.split("://", 1)[-1]) if p)
            pieces.update(v for _, v in parse_qsl(parts.query) if v)
            pieces.update(unquote(p) for p in list(pieces))
        # Longest first, so a part inside a longer part does not leave a remainder.
        self._pieces = sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for piece in self._pieces:
            text = text.replace(piece, "***")
        return text
