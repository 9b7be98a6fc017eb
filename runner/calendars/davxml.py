"""The few WebDAV/CalDAV XML documents sync needs: three request bodies and one
multistatus reader.

sync-collection (RFC 6578) asks for calendar-data as well as etags, so a server that
can (Radicale) sends changed items inline and a sync is one request; one that
cannot (Xandikos) sends etags only and the items come by calendar-multiget. The
reader takes any ElementTree-compatible element: lxml's from caldav's responses, or
xml.etree's in the quiet check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

DAV = "{DAV:}"
CAL = "{urn:ietf:params:xml:ns:caldav}"
VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"
SUPPORTED_REPORT = "{DAV:}supported-report"
# The caldav library's emulated sync token (a hash of etags, for servers without
# RFC 6578): never a token to send to a server.
FAKE_PREFIX = "fake-"
_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'


def href_key(href: Any) -> str:
    """The unquoted path of an href or URL: servers disagree on what they quote."""
    return unquote(urlsplit(str(href)).path)


def is_real_token(token: str | None) -> bool:
    return bool(token) and not str(token).startswith(FAKE_PREFIX)


def sync_body(token: str | None) -> str:
    tag = f"<D:sync-token>{escape(token)}</D:sync-token>" if token else "<D:sync-token/>"
    return (
        f"{_HEAD}<D:sync-collection {_NS}>{tag}<D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>"
    )


def propfind_body() -> str:
    return f"{_HEAD}<D:propfind {_NS}><D:prop><D:getetag/></D:prop></D:propfind>"


def multiget_body(hrefs: list[str], data: bool = True) -> str:
    listed = "".join(f"<D:href>{escape(h)}</D:href>" for h in hrefs)
    wanted = "<D:getetag/><C:calendar-data/>" if data else "<D:getetag/>"
    return (
        f"{_HEAD}<C:calendar-multiget {_NS}><D:prop>{wanted}</D:prop>{listed}</C:calendar-multiget>"
    )


@dataclass(frozen=True)
class Entry:
    href: str  # as the server spelt it
    key: str  # its unquoted path
    status: int | None  # the response's own status: 404 removed, 507 truncated
    etag: str | None
    data: str | None


@dataclass(frozen=True)
class Multistatus:
    entries: list[Entry]
    sync_token: str | None


def _code(status: str | None) -> int | None:
    parts = (status or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def parse_multistatus(root: Any) -> Multistatus:
    entries: list[Entry] = []
    if root is None:
        return Multistatus(entries, None)
    for response in root.iter(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").strip()
        if not href:
            continue
        etag = data = None
        for propstat in response.iter(f"{DAV}propstat"):
            if _code(propstat.findtext(f"{DAV}status")) != 200:
                continue
            etag = etag or (propstat.findtext(f"{DAV}prop/{DAV}getetag") or "").strip() or None
            data = data or propstat.findtext(f"{DAV}prop/{CAL}calendar-data") or None
        status = _code(response.findtext(f"{DAV}status"))
        entries.append(Entry(href, href_key(href), status, etag, data))
    token = root.findtext(f"{DAV}sync-token")
    return Multistatus(entries, token.strip() if token else None)


def preconditions(root: Any) -> list[str]:
    """The precondition tags of a DAV:error body (RFC 4918 section 16)."""
    if root is None or root.tag != f"{DAV}error":
        return []
    return [child.tag for child in root if isinstance(child.tag, str)]


@dataclass
class Listing:
    """What the server holds (full), or what changed since the stored token."""

    mode: str  # "sync-token" | "etag"
    full: bool
    token: str | None
    present: dict[str, Entry] = field(default_factory=dict)  # by href key
    gone: set[str] = field(default_factory=set)  # removed since the token
    # An etag listing standing in for a sync REPORT that failed for now: the state
    # keeps sync-token mode and `token`, which the next sync sends again.
    retry_token: bool = False


def absorb_sync_page(answer: Multistatus, collection: str, listing: Listing) -> bool:
    """Add one sync-collection reply to `listing`; True when the server truncated it
    (a 507 for the collection itself, RFC 6578 section 3.6)."""
    truncated = False
    for entry in answer.entries:
        if entry.key.rstrip("/") == collection.rstrip("/"):
            truncated = truncated or entry.status == 507
        elif entry.key.endswith("/"):
            continue  # a sub-collection, not an item
        elif entry.status == 404:
            listing.present.pop(entry.key, None)
            listing.gone.add(entry.key)
        else:
            listing.present[entry.key] = entry
            listing.gone.discard(entry.key)
    listing.token = answer.sync_token
    return truncated


def discovery_body(homes: bool = False) -> str:
    """What a collection is and its name; or (homes) where the account's calendars
    live: asked apart, as Radicale refuses the second to an anonymous client."""
    props = "<D:current-user-principal/><C:calendar-home-set/>" if homes else ""
    props = props or "<D:resourcetype/><D:displayname/>"
    return f"{_HEAD}<D:propfind {_NS}><D:prop>{props}</D:prop></D:propfind>"


@dataclass(frozen=True)
class Resource:
    """One response of a discovery PROPFIND."""

    href: str
    key: str
    calendar: bool  # resourcetype holds C:calendar
    name: str | None  # displayname
    principal: str | None  # current-user-principal's href
    home: str | None  # calendar-home-set's href


def parse_resources(root: Any) -> list[Resource]:
    found: list[Resource] = []
    if root is None:
        return found
    for response in root.iter(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").strip()
        if not href:
            continue
        calendar, name, principal, home = False, None, None, None
        for propstat in response.iter(f"{DAV}propstat"):
            if _code(propstat.findtext(f"{DAV}status")) != 200:
                continue
            prop = propstat.find(f"{DAV}prop")
            if prop is None:
                continue
            calendar = calendar or prop.find(f"{DAV}resourcetype/{CAL}calendar") is not None
            name = name or (prop.findtext(f"{DAV}displayname") or "").strip() or None
            principal = principal or _href(prop, f"{DAV}current-user-principal")
            home = home or _href(prop, f"{CAL}calendar-home-set")
        found.append(Resource(href, href_key(href), calendar, name, principal, home))
    return found


def _href(prop: Any, tag: str) -> str | None:
    text = prop.findtext(f"{tag}/{DAV}href")
    return text.strip() if text and text.strip() else None
