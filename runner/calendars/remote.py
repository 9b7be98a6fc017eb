"""One CalDAV collection, reached with the caldav library's DAVClient.

DAVClient does the HTTP: sessions, auth negotiation (basic, digest, bearer), 401s,
rate limits. The REPORT and PROPFIND bodies and their reading are ours (davxml.py):
the library's objects_by_sync_token cannot ask for calendar-data, builds an object
per item (most of a first sync's CPU time here), and its fallback for servers
without sync support downloads every item and returns a `fake-` token. Instead:
sync-collection with the stored token; on a server without it, a Depth-1 PROPFIND
of etags; then calendar-multiget, in pages, for items whose data did not come along.

Every exchange goes through one adapter (_Wire) that counts what was sent, 401
challenges and Digest's own retries included, and retries once, on a fresh
connection, a request that the server dropped on a reused kept-alive connection
(SOGo closes one after a 401 without saying `Connection: close`).

Only a clear "not supported" answer (403/501 with DAV:supported-report, a 207 without
a token, or an error from a server that never answered sync-collection) puts a
calendar in etag mode. Any other failed sync REPORT (a 5xx, say) gives this sync an
etag listing and keeps the token for the next one.

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
    Resource,
    absorb_sync_page,
    discovery_body,
    href_key,
    is_real_token,
    multiget_body,
    parse_multistatus,
    parse_resources,
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


class _Transient(Exception):
    pass


_DROPPED = (
    "RemoteDisconnected",
    "closed connection without response",
    "Connection aborted",
    "Connection reset",
    "BrokenPipe",
)


class _Wire(http.adapters.HTTPAdapter):
    """Counts every request sent and retries one dropped on a reused connection."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.kept_alive = False  # a connection from an earlier answer may be reused

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        reused = self.kept_alive
        try:
            response = self._send_once(request, *args, **kwargs)
        except http.exceptions.ConnectionError as exc:
            if not _dropped(exc):
                raise
            if not reused:
                raise RemoteError(
                    "the server closed the connection without answering (on a fresh connection)"
                ) from None
            try:
                response = self._send_once(request, *args, **kwargs)
            except http.exceptions.ConnectionError as again:
                if not _dropped(again):
                    raise
                raise RemoteError(
                    "the server closed the connection without answering, on a reused "
                    "kept-alive connection and again on a fresh one"
                ) from None
        self.kept_alive = "close" not in str(response.headers.get("Connection", "")).lower()
        return response

    def _send_once(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().send(request, *args, **kwargs)
        except http.exceptions.ConnectionError as exc:
            self.kept_alive = False
            self.close()  # drop every pooled connection: a next try opens a new one
            if _dropped(exc):
                self.sent += 1  # it went out; the server read it and hung up
            raise
        self.sent += 1
        return response


def _dropped(exc: BaseException) -> bool:
    """The request went out and the connection closed without an answer."""
    return any(mark in repr(exc) for mark in _DROPPED)


class Collection:
    """One calendar collection, with every HTTP exchange counted."""

    def __init__(self, cal: CalendarSettings, password: str | None) -> None:
        self.url = collection_url(cal)
        self.key = href_key(self.url)
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
        # Every exchange, 401 challenges and Digest's retries included, passes _Wire.
        self.wire = _Wire()
        self.client.session.mount("http://", self.wire)
        self.client.session.mount("https://", self.wire)

    @property
    def requests(self) -> int:
        return self.wire.sent

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
            except _Transient:
                # This time by etags; the token stays for the next sync to try again.
                listing = self._propfind_listing()
                listing.retry_token, listing.token = True, token
                return listing

    def resources(self, url: str, depth: int, homes: bool = False) -> list[Resource]:
        """A discovery PROPFIND (discover.py): resourcetype and names, or (homes) the
        principal and the calendar home."""
        with translated_errors():
            response = self.client.propfind(url, discovery_body(homes), depth=depth)
            if response.status == 404:
                raise RemoteError(NOT_FOUND)
            if response.status != 207:
                raise RemoteError(f"server error ({response.status}) asking what the url is")
            return parse_resources(response.tree)

    def etags(self, hrefs: list[str]) -> dict[str, str | None]:
        """The etags of a few items by key, None for one that is gone: a cheap probe."""
        with translated_errors():
            response = self.client.report(self.url, multiget_body(hrefs, data=False), depth=None)
            if response.status != 207:
                raise RemoteError(f"server error ({response.status}) probing items")
            found = {e.key: e.etag for e in parse_multistatus(response.tree).entries}
        return {href_key(h): found.get(href_key(h)) for h in hrefs}

    def etag_listing(self) -> Listing:
        """Every item with its etag (one PROPFIND): the check of a token's answers."""
        with translated_errors():
            return self._propfind_listing()

    def _sync_listing(self, token: str | None) -> Listing:
        listing = Listing("sync-token", token is None, token)
        for _ in range(MAX_PAGES):
            sent = listing.token
            response = self._sync_report(sent, token)
            truncated = absorb_sync_page(parse_multistatus(response.tree), self.key, listing)
            if not listing.token:
                raise _NoSyncSupport()  # a 207 without a token: no RFC 6578 here
            if not truncated:
                return listing
            if listing.token == sent:
                raise _Transient()  # truncated without progress: list everything, this once
        raise _Transient()

    def _sync_report(self, sent: str | None, first: str | None) -> Any:
        """One sync-collection REPORT that answered 207; the rest sorted into expired,
        not supported (clear answers only) and transient."""
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
        if response.status == 207:
            return response
        found = preconditions(response.tree)
        if VALID_SYNC_TOKEN in found:
            raise _TokenExpired()
        if response.status in (403, 501) and SUPPORTED_REPORT in found:
            raise _NoSyncSupport()
        if response.status >= 500 or response.status == 429 or first is not None:
            raise _Transient()  # a server that answered sync-collection before
        raise _NoSyncSupport()  # a first sync refused with a 4xx: never answered it

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
