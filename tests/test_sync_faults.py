"""`runner sync` against servers as people run them: the behaviours of DAViCal, SOGo
and others, played by the fault-injecting proxy (tests/dav_proxy.py) in front of a
real Radicale, and a URL that names a calendar home instead of a calendar."""

from __future__ import annotations

import json
import os

from runner.calendars.sync import VERIFY_EVERY
from runner.home import Home
from tests.caldav_servers import PASSWORD_ENV, DavServer, event
from tests.conftest import cli
from tests.dav_proxy import CountingProxy
from tests.test_sync import configure, snapshot, sync

NO_SYNC_501 = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:supported-report/></D:error>'
)


def recreate(server: DavServer, url: str) -> None:
    """Delete the calendar collection and make a new, empty one at the same URL."""
    path = url.split(str(server.port), 1)[1]
    assert server.request("DELETE", path)[0] in (200, 204)
    assert server.request("MKCALENDAR", path)[0] == 201


def test_recreated_calendar_on_a_server_that_accepts_old_tokens(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    radicale.put(url, "two.ics", event("two"))
    with CountingProxy(radicale.port, stale_tokens=True) as proxy:
        configure(home, proxy.url(url))
        assert sync(home).added == 2
        recreate(radicale, url)
        radicale.put(url, "three.ics", event("three"))
        proxy.reset()
        # the proxy answers the old token as DAViCal does: "three is new", nothing gone
        result = sync(home)
    assert result.ok, result.error
    assert set(snapshot(home)) == {"three.ics"}
    assert (result.added, result.deleted) == (1, 2)
    # the answer only added items: the sync checked it with one etag listing
    assert proxy.counts == {"REPORT": 1, "PROPFIND": 1} and result.requests == proxy.total


def test_recreated_calendar_with_old_items_put_back_is_found_within_n_syncs(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    radicale.put(url, "two.ics", event("two"))
    with CountingProxy(radicale.port, stale_tokens=True) as proxy:
        configure(home, proxy.url(url))
        assert sync(home).added == 2
        recreate(radicale, url)
        radicale.put(url, "one.ics", event("one"))  # same href, same data, same etag
        seen = []
        for _ in range(VERIFY_EVERY):
            proxy.reset()
            result = sync(home)
            assert result.ok, result.error
            seen.append((result.deleted, dict(proxy.counts)))
            if "two.ics" not in snapshot(home):
                break
    assert set(snapshot(home)) == {"one.ics"}
    assert seen[-1] == (1, {"REPORT": 1, "PROPFIND": 1})  # the periodic etag listing
    assert all(counts == {"REPORT": 1} for _, counts in seen[:-1])  # the others: one REPORT


def test_a_connection_closed_after_a_401_is_retried_on_a_fresh_one(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    os.environ[PASSWORD_ENV] = "pw"
    # refuse_quick: the caldav library's path, which asks without credentials first
    auth = ("basic", "user", "pw")
    with CountingProxy(radicale.port, refuse_quick=True, auth=auth, close_after_401=True) as proxy:
        configure(home, proxy.url(url), username="user", password_env=PASSWORD_ENV)
        for _ in range(3):  # one try is no proof: the old failure came about half the time
            result = sync(home)
            assert result.ok, result.error
            assert result.requests == proxy.total
            proxy.reset()
        assert proxy.dropped == 3 and set(snapshot(home)) == {"one.ics"}


def test_a_server_that_drops_every_request_says_so(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    with CountingProxy(radicale.port, close_after_401=True) as proxy:
        proxy.drop_all = True
        configure(home, proxy.url(url))
        result = sync(home)
    assert result.error == (
        "the server closed the connection without answering (on a fresh connection)"
    )
    assert result.requests == proxy.total == 2  # the quick request, then caldav's


def test_a_transient_503_keeps_sync_token_mode(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    with CountingProxy(radicale.port) as proxy:
        configure(home, proxy.url(url))
        assert sync(home).mode == "sync-token"
        radicale.put(url, "two.ics", event("two"))
        proxy.sync_answers = [(503, b"busy"), (503, b"busy")]  # the quick and the long try
        proxy.reset()
        busy = sync(home)
        assert busy.ok and busy.mode == "etag" and busy.added == 1, busy.error
        state = json.loads((home.state / "sync" / "agent.json").read_text())
        assert state["mode"] == "sync-token" and state["token"]
        radicale.put(url, "three.ics", event("three"))
        proxy.reset()
        again = sync(home)
    assert again.ok and again.mode == "sync-token" and again.added == 1, again.error
    assert proxy.counts == {"REPORT": 1} and set(snapshot(home)) == {
        "one.ics",
        "two.ics",
        "three.ics",
    }


def test_a_clear_not_supported_answer_switches_to_etag_mode(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    with CountingProxy(radicale.port, sync_answers=[(501, NO_SYNC_501)] * 2) as proxy:
        configure(home, proxy.url(url))
        first = sync(home)
        assert first.ok and first.mode == "etag", first.error
        proxy.reset()
        second = sync(home)
    assert second.mode == "etag" and proxy.counts == {"PROPFIND": 1}


def test_requests_are_counted_under_digest_auth(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    os.environ[PASSWORD_ENV] = "pw"
    with CountingProxy(radicale.port, auth=("digest", "user", "pw")) as proxy:
        configure(home, proxy.url(url), username="user", password_env=PASSWORD_ENV)
        first = sync(home)
        assert first.ok and first.added == 1, first.error
        assert first.requests == proxy.total  # 401 challenges and retries included
        radicale.put(url, "two.ics", event("two"))
        proxy.reset()
        second = sync(home)
        assert second.ok and second.added == 1, second.error
        assert second.requests == proxy.total


def test_requests_are_counted_through_an_http_proxy(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    configure(home, url)  # the server itself; the proxy comes from the environment
    env = {"http_proxy": "", "no_proxy": "", "NO_PROXY": ""}
    with CountingProxy(radicale.port) as proxy:
        env["http_proxy"] = f"http://127.0.0.1:{proxy.port}"
        done = cli(home, "sync", "--json", env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["calendars"][0]
    assert answer["added"] == 1 and proxy.total >= 1
    assert answer["requests"] == proxy.total  # the quick request is never sent here
