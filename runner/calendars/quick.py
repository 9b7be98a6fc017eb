"""The quick path: what changed since the stored sync token, in one plain request.

Most syncs find nothing new. Answering that takes one sync-collection REPORT, which
the standard library sends in a few milliseconds, while importing the caldav stack
costs ~0.15 s per process: more than the whole answer. So a sync asks here first,
with its token or (first sync) without one. A complete answer is used as is: with
calendar-data inline, changed items need nothing more. Anything unexpected (a 401
challenge, an expired token, a truncated reply, an error, a proxy to honour) returns
None, and sync.py goes the long way, through caldav.
"""

from __future__ import annotations

import base64
import http.client
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from urllib.parse import urlsplit

from runner.calendars.access import TIMEOUT, RemoteError
from runner.calendars.davxml import (
    Listing,
    absorb_sync_page,
    href_key,
    parse_multistatus,
    sync_body,
)

USER_AGENT = "calendar-agent-runner (quick sync)"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _connection(scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
    if scheme == "https":
        import ssl

        context = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=context)
    return http.client.HTTPConnection(host, port, timeout=TIMEOUT)


def changes_since(
    url: str,
    username: str | None,
    password: str | None,
    token: str | None,
    sent: Callable[[], None],
) -> Listing | None:
    """The changes since `token` (everything without one), or None when this path
    cannot tell. `sent` is called once the request has gone out, so that a request
    never sent (a proxy to honour, a refused connection) is never counted.

    None never means "nothing changed": the caller then syncs the long way. A refused
    connection is final, though, and is reported as such.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES):
        return None  # the HTTP client honours proxies; this check does not try to
    connection = _connection(parts.scheme, parts.hostname, parts.port)
    headers = {
        "Depth": "1",
        "Content-Type": "application/xml; charset=utf-8",
        "User-Agent": USER_AGENT,
    }
    if username is not None and password is not None:
        # Unasked-for Basic credentials only where no one can read them on the way.
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            return None
        pair = f"{username}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    try:
        connection.request("REPORT", parts.path or "/", sync_body(token).encode(), headers)
        sent()
        response = connection.getresponse()
        data = response.read()
    except ConnectionRefusedError:
        raise RemoteError("cannot connect: Connection refused") from None
    except TimeoutError:  # asking again the long way would only wait as long again
        raise RemoteError(f"no answer within {TIMEOUT}s (timeout)") from None
    except (OSError, http.client.HTTPException):
        return None  # TLS, resets, oddities: let the full client try and explain
    finally:
        connection.close()
    if response.status != 207:
        return None
    try:
        answer = parse_multistatus(ElementTree.fromstring(data))
    except ElementTree.ParseError:
        return None
    listing = Listing("sync-token", token is None, token)
    if absorb_sync_page(answer, href_key(url), listing) or not listing.token:
        return None
    return listing
