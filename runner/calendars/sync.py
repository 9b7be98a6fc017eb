"""`runner sync`: pull every CalDAV calendar into its vdir snapshot, incrementally.

Per calendar: list what changed (sync token) or everything (etag comparison), fetch
only new and changed items, then apply writes and removals to calendars/<name>/ and
save the sync state. The listing is asked for first in one plain request (quick.py);
the caldav client (remote.py) is loaded only when that cannot answer or items must
be fetched by multiget. All network work happens before the first file is touched, so a
server that fails midway leaves the snapshot exactly as it was. An answer that would
empty a non-empty snapshot is refused unless forced (vdirsyncer does the same): a
misconfigured URL or a server hiccup must not look like "delete everything".

Sync state lives in .runner/sync/<name>.json (syncstate.py), a cache.

A calendar deleted and recreated at the same URL. Radicale, Xandikos and Cyrus
refuse the old token (403/412 valid-sync-token) and the sync starts over. DAViCal
and SOGo accept it and list only the new calendar's items, so the old items would
stay forever. Their tokens are a global counter or a timestamp, and getctag changes
on every edit, so no property tells "another collection at the same URL" from
"the same collection, edited". Only the items do. So a token's answer is checked
against an etag listing of the whole calendar (one PROPFIND; what it lacks is
deleted) every VERIFY_EVERY-th token sync, which bounds how long a stale item
survives (an hour at sync_every: 5m), and at once when an answer looks like a new
calendar (it only adds items, none of them known, nothing removed) and a probe of
up to PROBE known items (one multiget of etags) finds one gone or changed. The cost:
one PROPFIND every VERIFY_EVERY syncs, one small REPORT on a sync that only adds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from filelock import FileLock, Timeout

from runner.calendars.access import RemoteError, collection_url, password_for, public_url
from runner.calendars.davxml import Entry, Listing, is_real_token
from runner.calendars.quick import changes_since
from runner.calendars.syncstate import State, load_state, save_state, state_path
from runner.calendars.vdir import EXTENSION, Snapshot, extract_uid, hashed_name, item_file_name
from runner.errors import RunnerError
from runner.home import Home
from runner.settings import CalendarSettings, Settings

if TYPE_CHECKING:
    from runner.calendars.remote import Collection

VERIFY_EVERY = 12  # token syncs between two etag listings that check the token's answers
PROBE = 20  # known items probed when an answer only adds new ones
LOCK_WAIT = 120.0  # seconds to wait for another sync of the same calendar

# (calendar name, items downloaded so far, items to download)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CalendarSyncResult:
    name: str
    url: str
    mode: str = ""  # sync-token | etag; empty when the calendar failed before listing
    full: bool = False  # every item was compared (first sync, lost state, expired token)
    added: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    requests: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "ok": self.ok,
            "mode": self.mode or None,
            "full": self.full,
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "requests": self.requests,
            "error": self.error,
        }


@dataclass(frozen=True)
class SyncResult:
    calendars: tuple[CalendarSyncResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.calendars)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "ok": self.ok, "calendars": [c.to_json() for c in self.calendars]}


def sync_all(
    home: Home, settings: Settings, force: bool = False, progress: Progress | None = None
) -> SyncResult:
    """Sync every calendar that has a url; one failing never stops the others."""
    results = [
        sync_calendar(home, cal, force=force, progress=progress)
        for cal in settings.calendars or ()
        if cal.is_caldav
    ]
    return SyncResult(tuple(results))


def sync_calendar(
    home: Home, cal: CalendarSettings, force: bool = False, progress: Progress | None = None
) -> CalendarSyncResult:
    url = public_url(collection_url(cal))
    home.state.joinpath("sync").mkdir(parents=True, exist_ok=True)
    # Two syncs of one calendar (a watch and a manual sync) take turns.
    lock = FileLock(str(state_path(home, cal.name).with_suffix(".lock")), thread_local=False)
    try:
        lock.acquire(timeout=LOCK_WAIT)
    except Timeout:
        return CalendarSyncResult(cal.name, url, error="another sync of it is still running")
    job = _Job(home, cal, url, force, progress)
    try:
        return job.run()
    except (RemoteError, RunnerError) as exc:
        return CalendarSyncResult(cal.name, url, requests=job.requests, error=str(exc))
    finally:
        job.close()
        lock.release()


@dataclass(frozen=True)
class _Applied:
    added: int
    changed: int
    deleted: int
    unchanged: int
    items: dict[str, tuple[str, str]]  # the new state: key -> (etag, file)

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("added", "changed", "deleted", "unchanged")}


class _Job:
    """One calendar's sync: list, fetch, then write; the network before any file."""

    def __init__(
        self, home: Home, cal: CalendarSettings, url: str, force: bool, progress: Progress | None
    ) -> None:
        self.home = home
        self.cal = cal
        self.url = url  # without a password, for messages and the state
        self.full_url = collection_url(cal)
        self.force = force
        self.progress = progress
        self.password: str | None = None
        self.quick_requests = 0
        self.remote: Collection | None = None
        self.snapshot = Snapshot(home, cal.name)
        self.state_path = state_path(home, cal.name)

    @property
    def requests(self) -> int:
        return self.quick_requests + (self.remote.requests if self.remote else 0)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()

    def result(self, **counts: Any) -> CalendarSyncResult:
        return CalendarSyncResult(self.cal.name, self.url, requests=self.requests, **counts)

    def client(self) -> Collection:
        if self.remote is None:
            from runner.calendars.remote import Collection

            self.remote = Collection(self.cal, self.password)
        return self.remote

    def _sent_quick(self) -> None:
        self.quick_requests += 1

    def run(self) -> CalendarSyncResult:
        self.snapshot.check()
        old = load_state(self.state_path, self.url)
        on_disk = self.snapshot.files()
        self.password = password_for(self.cal)
        listing = self.listing(old)
        previous = old.items if old else {}
        checks = 0 if old is None else old.checks + 1
        if not listing.full and (checks >= VERIFY_EVERY or self.stale(listing, previous)):
            listing = self.checked(listing)
        calendar = bool(old and old.calendar) or bool(previous) or bool(listing.present)
        if not calendar:  # nothing ever came: maybe the url is a calendar home
            calendar = self.check_is_calendar()
        if old is not None and _nothing_new(listing, old, on_disk):
            # Only the token (and the count of syncs) moved.
            moved = replace(old, token=listing.token, checks=checks, calendar=calendar)
            save_state(self.state_path, moved)
            return self.result(mode="sync-token", unchanged=len(old.items))
        candidates = _candidates(listing, previous)
        kept, fetched, to_fetch = _sorted(candidates, previous, on_disk)
        if not candidates and on_disk and not self.force:
            raise RemoteError(
                f"the server returned no items but calendars/{self.cal.name}/ holds "
                f"{len(on_disk)}; refusing to delete them (run `runner sync --force` if "
                "the calendar was emptied on purpose)"
            )
        fetched.update(self.fetch(to_fetch, len(fetched)))
        if not kept and not fetched and on_disk and not self.force:
            raise RemoteError(
                f"every item vanished while fetching, but calendars/{self.cal.name}/ holds "
                f"{len(on_disk)}; refusing to delete them (use --force)"
            )
        for key, entry in fetched.items():  # a multiget answer may omit the etag
            if not entry.etag and key in candidates:
                fetched[key] = replace(entry, etag=candidates[key].etag)
        done = self.apply(listing.full, previous, kept, fetched, on_disk)
        mode = "sync-token" if listing.retry_token else listing.mode
        checks = 0 if listing.full else checks
        state = State(self.url, mode, listing.token, done.items, checks, calendar)
        save_state(self.state_path, state)
        return self.result(mode=listing.mode, full=listing.full, **done.counts())

    def listing(self, old: State | None) -> Listing:
        """What changed since the stored token (quick path first), or everything."""
        token = old.token if old else None
        if old is None or (old.mode == "sync-token" and (token is None or is_real_token(token))):
            quick = changes_since(
                self.full_url, self.cal.username, self.password, token, self._sent_quick
            )
            if quick is not None:
                return quick
        return self.client().listing(token, old.mode if old else None)

    def check_is_calendar(self) -> bool:
        """True when the url is a calendar; False when the server would not say (an
        empty calendar it may well be, asked again next time); NotACalendar else."""
        from runner.calendars.discover import NotACalendar, discover

        try:
            found = discover(self.client())
        except RemoteError:
            return False
        if not found.is_calendar:
            raise NotACalendar(found)
        return True

    def stale(self, listing: Listing, previous: dict[str, tuple[str, str]]) -> bool:
        """Whether an answer that only adds items hides that the known ones are gone:
        a few of them are probed (one multiget of etags, a constant cost)."""
        if not _suspicious(listing, previous):
            return False
        sample = sorted(previous)[:PROBE]
        try:
            found = self.client().etags([quote(key, safe="/@:+") for key in sample])
        except RemoteError:
            return True  # a server without an etag-only multiget: list everything
        return any(found.get(key) != previous[key][0] for key in sample)

    def checked(self, listing: Listing) -> Listing:
        """A token's answer checked against an etag listing of the whole calendar:
        what the listing lacks is gone, whatever the token said (see the docstring)."""
        every = self.client().etag_listing()
        for key, entry in every.present.items():
            inline = listing.present.get(key)
            if inline is not None and inline.data and inline.etag == entry.etag:
                every.present[key] = inline  # the data came along already
        return replace(every, mode=listing.mode, token=listing.token)

    def fetch(self, hrefs: list[str], inline: int) -> dict[str, Entry]:
        """The items whose data did not come with the listing, by calendar-multiget."""
        total = inline + len(hrefs)
        if inline and self.progress is not None:
            self.progress(self.cal.name, inline, total)
        if not hrefs:
            return {}

        def on_page(done: int) -> None:
            if self.progress is not None:
                self.progress(self.cal.name, inline + done, total)

        return self.client().fetch(hrefs, on_page)

    def apply(
        self,
        full: bool,
        previous: dict[str, tuple[str, str]],
        kept: dict[str, tuple[str, str]],
        fetched: dict[str, Entry],
        on_disk: set[str],
    ) -> _Applied:
        """Writes first, removals last; the caller saves the state after. A crash in
        between leaves files that the next sync compares and corrects."""
        owner: dict[str, str] = {name: key for key, (_, name) in kept.items()}
        items = dict(kept)
        writes: list[tuple[str, str]] = []
        added = changed = unchanged = 0
        for key in sorted(fetched):
            entry = fetched[key]
            data = entry.data or ""
            name = item_file_name(extract_uid(data), key)
            if owner.get(name, key) != key:  # two hrefs with one UID: keep both
                name = hashed_name("href:" + key) + EXTENSION
            owner[name] = key
            if name in on_disk and _same_content(self.snapshot.path(name), data):
                unchanged += 1
            else:
                writes.append((name, data))
                if name in on_disk or key in previous:
                    changed += 1
                else:
                    added += 1
            items[key] = (entry.etag or "", name)
        unchanged += len(kept)
        self.snapshot.write_many(writes)

        wanted = {name for _, name in items.values()}
        # A full listing makes the folder a mirror, so strays go too; an incremental
        # one removes only files this sync wrote before.
        known = {name for _, name in previous.values()}
        doomed = (on_disk if full else on_disk & known) - wanted
        for name in sorted(doomed):
            self.snapshot.remove(name)
        if doomed or added or changed:
            self.snapshot.flush()
        # A changed UID renames an item's file: its old file goes but is no deletion.
        renamed = {name for key, (_, name) in previous.items() if key in items}
        return _Applied(added, changed, len(doomed - renamed), unchanged, items)


def _suspicious(listing: Listing, previous: dict[str, tuple[str, str]]) -> bool:
    """An answer to a stored token that only adds items: what a server that accepted
    a token of a deleted calendar sends for the new one (DAViCal, SOGo)."""
    return bool(
        previous
        and listing.present
        and not listing.gone
        and previous.keys().isdisjoint(listing.present)
    )


def _nothing_new(listing: Listing, old: State, on_disk: set[str]) -> bool:
    if listing.full or listing.present or listing.gone:
        return False
    return all(name in on_disk for _, name in old.items.values())


def _candidates(listing: Listing, previous: dict[str, tuple[str, str]]) -> dict[str, Entry]:
    """What the snapshot holds afterwards: the listed items and, after an incremental
    answer, the earlier ones it did not remove."""
    candidates: dict[str, Entry] = dict(listing.present)
    if not listing.full:
        for key, (etag, _name) in previous.items():
            if key not in listing.gone and key not in candidates:
                candidates[key] = Entry(quote(key, safe="/@:+"), key, None, etag, None)
    return candidates


def _sorted(
    candidates: dict[str, Entry], previous: dict[str, tuple[str, str]], on_disk: set[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, Entry], list[str]]:
    """Kept (same etag, file still there), fetched already (data inline), to fetch (new,
    changed, or whose file someone removed by hand)."""
    kept: dict[str, tuple[str, str]] = {}
    fetched: dict[str, Entry] = {}
    to_fetch: list[str] = []
    for key, entry in candidates.items():
        known = previous.get(key)
        if known is not None and known[0] == entry.etag and known[1] in on_disk:
            kept[key] = known
        elif entry.data:
            fetched[key] = entry
        else:
            to_fetch.append(entry.href)
    return kept, fetched, to_fetch


def _same_content(path: Path, data: str) -> bool:
    try:
        return path.read_bytes() == data.encode("utf-8")
    except OSError:
        return False
