"""One CalDAV collection, reached with the caldav library's DAVClient.

DAVClient does the HTTP: sessions, auth negotiation (basic, digest, bearer), 401s,
rate limits. The REPORT and PROPFIND bodies and their reading are ours (davxml.py):
the library's objects_by_sync_token cannot ask for calendar-data, builds an object
per item (most of a first sync's CPU time here), and its fallback for servers
without sync support downloads every item and returns a `fake-` token. Instead:
sync-collection with the stored token; on a server without it, a Depth-1 PROPFIND
of etags; then calendar-multiget, in pages, for items whose data did not come along.

Every failure leaves as a RemoteError with a one-line cause (no traceback, no
password) that sync.py reports against the calendar's name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http

from runner.calendars.access import TIMEOUT, RemoteError, collection_url
from runner.calendars.davxml import (
    SUPPORTED_REPORT,
    VALID_SYNC_TOKEN,
    Entry,
    Listing,
    absorb_sync_page,
    href_key,
    is_real_token,
    multiget_body,
    parse_multistatus,
    preconditions,
    propfind_body,
    sync_body,
)
from runner.settings import CalendarSettings

PAGE = 250  # hrefs per calendar-multiget
MAX_PAGES = 100  # truncated sync-collection replies followed (RFC 6578 section 3.6)
NOT_FOUND = "no calendar collection at this url (404 Not Found)"


class _NoSyncSupport(Exception):
    pass


class _TokenExpired(Exception):
    pass


class Collection:
    """One calendar collection, with every HTTP exchange counted."""

    def __init__(self, cal: CalendarSettings, password: str | None) -> None:
        self.url = collection_url(cal)
        self.key = href_key(self.url)
        self.requests = 0
        try:
            # Any: the library's types are a sync/async union; this is the sync client.
            self.client: Any = DAVClient(
                url=self.url,
                username=cal.username,
                password=password,
                timeout=TIMEOUT,
                enable_rfc6764=False,
            )
        except (ValueError, dav_error.DAVError) as exc:
            raise RemoteError(f"bad url: {exc}") from None
        # Every exchange, 401 challenges included, passes the session's response hook.
        self.client.session.hooks["response"].append(self._count)

    def _count(self, response: Any, **_: Any) -> Any:
        self.requests += 1
        return response

    def close(self) -> None:
        self.client.close()

    def listing(self, token: str | None, mode: str | None) -> Listing:
        """Changes since `token`; everything when there is none or it expired."""
        with translated_errors():
            if mode == "etag" or (token is not None and not is_real_token(token)):
                return self._propfind_listing()
            try:
                try:
                    return self._sync_listing(token)
                except _TokenExpired:
                    return self._sync_listing(None)  # the server forgot it: start over
            except (_NoSyncSupport, _TokenExpired):
                return self._propfind_listing()

    def _sync_listing(self, token: str | None) -> Listing:
        listing = Listing("sync-token", token is None, token)
        for _ in range(MAX_PAGES):
            sent = listing.token
            try:
                response = self.client.report(self.url, sync_body(sent), depth=1)
            except dav_error.AuthorizationError as exc:  # 403 may be a precondition
                if VALID_SYNC_TOKEN in exc.preconditions:
                    raise _TokenExpired() from None
                if exc.status == 403 and SUPPORTED_REPORT in exc.preconditions:
                    raise _NoSyncSupport() from None
                raise
            if response.status == 404:
                raise RemoteError(NOT_FOUND)
            if response.status != 207:
                if VALID_SYNC_TOKEN in preconditions(response.tree):
                    raise _TokenExpired()
                raise _NoSyncSupport()
            truncated = absorb_sync_page(parse_multistatus(response.tree), self.key, listing)
            if not listing.token:
                raise _NoSyncSupport()
            if not truncated:
                return listing
            if listing.token == sent:
                raise _NoSyncSupport()  # truncated without progress: list everything
        raise _NoSyncSupport()

    def _propfind_listing(self) -> Listing:
        response = self.client.propfind(self.url, propfind_body(), depth=1)
        if response.status == 404:
            raise RemoteError(NOT_FOUND)
        if response.status != 207:
            raise RemoteError(f"server error ({response.status}) listing the calendar")
        listing = Listing("etag", True, None)
        for entry in parse_multistatus(response.tree).entries:
            if entry.key.rstrip("/") != self.key.rstrip("/") and not entry.key.endswith("/"):
                listing.present[entry.key] = entry
        return listing

    def fetch(
        self, hrefs: list[str], on_page: Callable[[int], None] | None = None
    ) -> dict[str, Entry]:
        """calendar-multiget in pages; an item that vanished meanwhile is left out."""
        found: dict[str, Entry] = {}
        with translated_errors():
            for start in range(0, len(hrefs), PAGE):
                page = hrefs[start : start + PAGE]
                # RFC 4791 section 7.9: no Depth header on calendar-multiget.
                response = self.client.report(self.url, multiget_body(page), depth=None)
                if response.status == 404:
                    raise RemoteError(NOT_FOUND)
                if response.status != 207:
                    raise RemoteError(f"server error ({response.status}) fetching items")
                for entry in parse_multistatus(response.tree).entries:
                    if entry.data:
                        found[entry.key] = entry
                if on_page is not None:
                    on_page(start + len(page))
        return found


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_SSL = re.compile(r"(\[SSL[^\]]*\][^'\")(]*)")


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn library and network exceptions into a RemoteError with a short cause."""
    try:
        yield
    except RemoteError:
        raise
    except Exception as exc:
        message = describe(exc)
        if message is None:
            raise
        raise RemoteError(message) from None


def describe(exc: BaseException) -> str | None:
    text = str(exc)
    if isinstance(exc, http.exceptions.SSLError):
        match = _SSL.search(text)
        return f"TLS error: {match[1].strip() if match else 'handshake failed'}"
    if isinstance(exc, http.exceptions.Timeout):
        return f"no answer within {TIMEOUT}s (timeout)"
    if isinstance(exc, http.exceptions.ConnectionError):
        match = _ERRNO.search(text)
        return f"cannot connect: {match[1].strip() if match else 'connection failed'}"
    if isinstance(exc, dav_error.AuthorizationError):
        if exc.status == 403:
            return "access denied (403 Forbidden)"
        return "authentication failed (401 Unauthorized): check username and password"
    if isinstance(exc, dav_error.NotFoundError):
        return NOT_FOUND
    if isinstance(exc, dav_error.DAVError):
        reason = (exc.reason or "").strip().splitlines()
        first = reason[0][:200] if reason else type(exc).__name__
        return f"server error: {first}"
    if isinstance(exc, http.exceptions.RequestException):
        return f"request failed: {type(exc).__name__}"
    if isinstance(exc, NotImplementedError):  # the server offers no auth scheme we know
        return f"authentication: {exc}"
    if isinstance(exc, SyntaxError):  # lxml's XMLSyntaxError: the answer was not XML
        return "the server's answer was not valid XML"
    return None
