"""What a CalDAV URL points at, and the calendars behind it.

A url in runner.yaml must name one calendar collection. People paste their calendar
home (`.../caldav.php/alice/`, `.../dav/calendars/user/alice/`) or their principal
instead, where a sync-collection REPORT answers "nothing here" (Xandikos, Cyrus) or
"not supported" (Radicale): it looked like an empty calendar. discover() asks the URL
itself (one Depth-1 PROPFIND of resourcetype and displayname). A calendar is fine.
Otherwise the calendars among its children are the answer, or, when it has none,
the calendar-home-set of the URL or of the account's principal is followed (at most
three more requests). sync.py calls it when a first full listing comes back empty;
`runner sync --discover URL` calls it on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from runner.calendars.access import RemoteError, password_for, public_url
from runner.calendars.davxml import Resource, href_key
from runner.errors import UsageError
from runner.settings import CalendarSettings

if TYPE_CHECKING:
    from runner.calendars.remote import Collection


@dataclass(frozen=True)
class FoundCalendar:
    name: str
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url}


@dataclass(frozen=True)
class Discovery:
    url: str
    is_calendar: bool
    home: str | None  # the collection whose calendars are listed, if one was found
    calendars: tuple[FoundCalendar, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "is_calendar": self.is_calendar,
            "home": self.home,
            "calendars": [c.to_json() for c in self.calendars],
        }

    def describe(self) -> str:
        """What the URL is, in words, with the calendars found (one per line)."""
        if self.is_calendar:
            return "this url is a calendar"
        if not self.calendars:
            return "this url is not a calendar, and no calendars were found from it"
        if self.home == self.url:
            head = "this url is a calendar home, not a calendar; the calendars there:"
        else:
            head = f"this url is not a calendar; the calendars of this account ({self.home}):"
        width = max(len(c.name) for c in self.calendars)
        lines = [f"  {c.name.ljust(width)}  {c.url}" for c in self.calendars]
        return "\n".join([head, *lines])


class NotACalendar(RemoteError):
    """The configured url is a calendar home (or a principal, or anything else)."""

    def __init__(self, found: Discovery) -> None:
        advice = "put one of these urls in runner.yaml" if found.calendars else "check the url"
        super().__init__(f"{found.describe()}\n{advice} (runner sync --discover URL lists them)")
        self.found = found


def discover(remote: Collection) -> Discovery:
    url = public_url(remote.url)
    here = remote.resources(remote.url, depth=1)
    own = next((r for r in here if _same(r.key, remote.key)), None)
    if own is not None and own.calendar:
        return Discovery(url, True, None, (_found(own, url),))
    children = [r for r in here if r.calendar and not _same(r.key, remote.key)]
    if children:
        return Discovery(url, False, url, tuple(_found(r, url) for r in children))
    asked = remote.resources(remote.url, depth=0, homes=True)
    home = asked[0].home if asked else None
    if home is None and asked and asked[0].principal is not None:
        principal = remote.resources(urljoin(remote.url, asked[0].principal), 0, homes=True)
        home = principal[0].home if principal else None
    if home is None or _same(href_key(home), remote.key):
        return Discovery(url, False, None, ())
    home_url = urljoin(remote.url, home)
    if _origin(home_url) != _origin(remote.url) and urlsplit(home_url).scheme != "https":
        # The login would go along: never to another server in the clear.
        return Discovery(url, False, _printable(public_url(home_url)), ())
    listed = [r for r in remote.resources(home_url, depth=1) if r.calendar]
    return Discovery(url, False, public_url(home_url), tuple(_found(r, url) for r in listed))


def discover_url(
    url: str,
    calendars: tuple[CalendarSettings, ...],
    username: str | None,
    password_env: str | None,
) -> Discovery:
    """`runner sync --discover URL`: the same questions, for any url. The login is
    the one given, else that of the first calendar in runner.yaml on the same server."""
    from runner.calendars.remote import Collection

    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The url itself is not echoed: it may hold a password.
        raise UsageError("--discover: not an http(s) url with a host")
    cal = CalendarSettings(name="discover", url=url, username=username, password_env=password_env)
    if username is None and password_env is None:
        cal = next((c for c in calendars if c.url and _origin(c.url) == _origin(url)), cal)
        cal = replace(cal, url=url)
    remote = Collection(cal, password_for(cal))
    try:
        return discover(remote)
    finally:
        remote.close()


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _found(resource: Resource, base: str) -> FoundCalendar:
    """Names and hrefs are the server's words, printed on a terminal: control
    characters (escape sequences, newlines) become `?`, and names are cut at 100."""
    name = resource.name or resource.key.rstrip("/").rsplit("/", 1)[-1]
    return FoundCalendar(
        _printable(name)[:100], _printable(public_url(urljoin(base, resource.href)))
    )


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)
