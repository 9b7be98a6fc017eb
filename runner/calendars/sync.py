"""`runner sync`: pull every CalDAV calendar into its vdir snapshot, incrementally.

Per calendar: list what changed (sync token) or everything (etag comparison), fetch
only new and changed items, then apply writes and removals to calendars/<name>/ and
save the sync state. The listing is asked for first in one plain request (quick.py);
the caldav client (remote.py) is loaded only when that cannot answer or items must
be fetched by multiget. All network work happens before the first file is touched, so a
server that fails midway leaves the snapshot exactly as it was. An answer that would
empty a non-empty snapshot is refused unless forced (vdirsyncer does the same): a
misconfigured URL or a server hiccup must not look like "delete everything".

Sync state lives in .runner/sync/<name>.json: the token and, per href, the etag and
the file it was written to. It is a cache: when it is missing or corrupt the next
sync compares everything again and the result is the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from filelock import FileLock, Timeout

from runner.calendars.access import RemoteError, collection_url, password_for, public_url
from runner.calendars.davxml import Entry, Listing, is_real_token
from runner.calendars.quick import changes_since
from runner.calendars.vdir import EXTENSION, Snapshot, extract_uid, hashed_name, item_file_name
from runner.errors import RunnerError
from runner.fsutil import atomic_write
from runner.home import Home
from runner.settings import CalendarSettings, Settings

if TYPE_CHECKING:
    from runner.calendars.remote import Collection

STATE_VERSION = 1
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
    lock = FileLock(str(_state_path(home, cal.name).with_suffix(".lock")), thread_local=False)
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


@dataclass
class _State:
    url: str
    mode: str | None = None
    token: str | None = None
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (etag, file)


def _state_path(home: Home, name: str) -> Path:
    return home.state / "sync" / f"{name}.json"


def _load_state(path: Path, url: str) -> _State | None:
    """The saved state, or None (full sync) when missing, corrupt or for another url."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION or raw.get("url") != url:
            return None
        items: dict[str, tuple[str, str]] = {}
        for key, (etag, name) in raw["items"].items():
            if not all(isinstance(v, str) for v in (key, etag, name)):
                return None
            if not name.endswith(EXTENSION) or "/" in name or name.startswith("."):
                return None
            items[key] = (etag, name)
        token, mode = raw.get("token"), raw.get("mode")
        if not isinstance(token, str | None) or mode not in ("sync-token", "etag"):
            return None
        return _State(url=url, mode=mode, token=token, items=items)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _save_state(path: Path, state: _State) -> None:
    document = {
        "version": STATE_VERSION,
        "url": state.url,
        "mode": state.mode,
        "token": state.token,
        "items": {k: list(v) for k, v in sorted(state.items.items())},
    }
    atomic_write(path, json.dumps(document, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class _Applied:
    added: int
    changed: int
    deleted: int
    unchanged: int
    items: dict[str, tuple[str, str]]  # the new state: key -> (etag, file)


class _Job:
    """One calendar's sync: list, fetch, then write; the network before any file."""

    def __init__(
        self, home: Home, cal: CalendarSettings, url: str, force: bool, progress: Progress | None
    ) -> None:
        self.home = home
        self.cal = cal
        self.url = url
        self.force = force
        self.progress = progress
        self.quick_requests = 0
        self.remote: Collection | None = None
        self.snapshot = Snapshot(home, cal.name)
        self.state_path = _state_path(home, cal.name)

    @property
    def requests(self) -> int:
        return self.quick_requests + (self.remote.requests if self.remote else 0)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()

    def result(self, **counts: Any) -> CalendarSyncResult:
        return CalendarSyncResult(self.cal.name, self.url, requests=self.requests, **counts)

    def connect(self, password: str | None) -> Collection:
        from runner.calendars.remote import Collection

        return Collection(self.cal, password)

    def run(self) -> CalendarSyncResult:
        self.snapshot.check()
        full_url = collection_url(self.cal)
        state_url = public_url(full_url)  # a password in the url is never stored
        old = _load_state(self.state_path, state_url)
        on_disk = self.snapshot.files()
        password = password_for(self.cal)

        listing: Listing | None = None
        if old is None or (old.mode == "sync-token" and is_real_token(old.token)):
            self.quick_requests += 1
            token = old.token if old else None
            listing = changes_since(full_url, self.cal.username, password, token)
            if (
                old is not None
                and listing is not None
                and not listing.present
                and not listing.gone
                and all(name in on_disk for _, name in old.items.values())
            ):
                if listing.token != old.token:  # nothing changed; only the token moved
                    old.token = listing.token
                    _save_state(self.state_path, old)
                return self.result(mode="sync-token", unchanged=len(old.items))
        if listing is None:
            self.remote = self.connect(password)
            listing = self.remote.listing(old.token if old else None, old.mode if old else None)
        previous = old.items if old else {}

        # What the snapshot holds afterwards: kept items, and items to fetch (new,
        # changed, or whose file someone removed by hand).
        candidates: dict[str, Entry] = dict(listing.present)
        if not listing.full:
            for key, (etag, _name) in previous.items():
                if key not in listing.gone and key not in candidates:
                    candidates[key] = Entry(quote(key, safe="/@:+"), key, None, etag, None)
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

        if not candidates and on_disk and not self.force:
            raise RemoteError(
                f"the server returned no items but calendars/{self.cal.name}/ holds "
                f"{len(on_disk)}; refusing to delete them (run `runner sync --force` if "
                "the calendar was emptied on purpose)"
            )
        inline, total = len(fetched), len(fetched) + len(to_fetch)
        if inline and self.progress is not None:
            self.progress(self.cal.name, inline, total)
        if to_fetch:

            def on_page(done: int) -> None:
                if self.progress is not None:
                    self.progress(self.cal.name, inline + done, total)

            if self.remote is None:
                self.remote = self.connect(password)
            fetched.update(self.remote.fetch(to_fetch, on_page))
        if not kept and not fetched and on_disk and not self.force:
            raise RemoteError(
                f"every item vanished while fetching, but calendars/{self.cal.name}/ holds "
                f"{len(on_disk)}; refusing to delete them (use --force)"
            )
        for key, entry in fetched.items():  # a multiget answer may omit the etag
            if not entry.etag and key in candidates:
                fetched[key] = replace(entry, etag=candidates[key].etag)
        done = self.apply(listing.full, previous, kept, fetched, on_disk)
        _save_state(
            self.state_path,
            _State(url=state_url, mode=listing.mode, token=listing.token, items=done.items),
        )
        return self.result(
            mode=listing.mode,
            full=listing.full,
            added=done.added,
            changed=done.changed,
            deleted=done.deleted,
            unchanged=done.unchanged,
        )

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


def _same_content(path: Path, data: str) -> bool:
    try:
        return path.read_bytes() == data.encode("utf-8")
    except OSError:
        return False
