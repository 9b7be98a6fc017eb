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
    # the answer only added items: a probe of the known ones (a multiget REPORT) found
    # them gone, and one etag listing (PROPFIND) told what the calendar holds
    assert proxy.counts == {"REPORT": 2, "PROPFIND": 1} and result.requests == proxy.total


def test_an_answer_that_only_adds_costs_one_small_probe(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "one.ics", event("one"))
    with CountingProxy(dav_server.port) as proxy:
        configure(home, proxy.url(url), **dav_server.login)
        assert sync(home).added == 1
        dav_server.put(url, "two.ics", event("two"))
        proxy.reset()
        result = sync(home)
    assert result.ok and (result.added, result.unchanged) == (1, 1), result.error
    # the sync REPORT, (Xandikos: the multiget of the new item,) the probe of "one"
    # (Cyrus: after the 401 that the caldav library's first request always gets)
    expected = 2 + (dav_server.kind == "xandikos") + bool(dav_server.login)
    assert proxy.counts == {"REPORT": expected}
    assert result.requests == proxy.total


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


def test_a_request_dropped_on_a_reused_and_a_fresh_connection_says_both(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    os.environ[PASSWORD_ENV] = "pw"
    auth = ("basic", "user", "pw")
    with CountingProxy(radicale.port, refuse_quick=True, auth=auth, close_after_401=True) as proxy:
        proxy.drop_all_after_401 = True
        configure(home, proxy.url(url), username="user", password_env=PASSWORD_ENV)
        result = sync(home)
    assert result.error == (
        "the server closed the connection without answering, on a reused kept-alive "
        "connection and again on a fresh one"
    )
    # the quick request (503), the 401 challenge, the dropped request and its retry
    assert result.requests == proxy.total == 4 and proxy.dropped == 2


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


def home_url(server: DavServer) -> str:
    """The account's calendar home: where people paste it from their client's settings."""
    return server.parent


def account(server: DavServer) -> dict[str, str]:
    """A login on every server: Radicale shows a home only to its owner."""
    os.environ[PASSWORD_ENV] = server.password
    return {"username": server.username, "password_env": PASSWORD_ENV}


def test_a_calendar_home_url_lists_its_calendars(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "one.ics", event("one"))
    configure(home, home_url(dav_server), **account(dav_server))
    done = cli(home, "sync", "--json")
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["calendars"][0]["error"]
    assert error.startswith("this url is a calendar home, not a calendar; the calendars there:")
    assert url in error  # the calendar made here, by its URL, among the others there
    assert "Traceback" not in done.stderr and "calendar home" in done.stderr
    assert snapshot(home) == {} and not (home.state / "sync" / "agent.json").exists()

    found = cli(home, "sync", "--discover", home_url(dav_server))
    assert found.returncode == 0, found.stderr
    assert "is a calendar home" in found.stderr
    rows = [line.split("\t") for line in found.stdout.splitlines()]
    assert [url] == [u for _, u in rows if u == url]
    assert all(name and u.startswith("http://127.0.0.1:") for name, u in rows)

    on_purpose = cli(home, "sync", "--discover", url, "--json")
    assert on_purpose.returncode == 0, on_purpose.stderr
    document = json.loads(on_purpose.stdout)
    assert document["is_calendar"] and [c["url"] for c in document["calendars"]] == [url]


def test_a_calendar_home_synced_before_as_empty_is_found_too(
    home: Home, dav_server: DavServer
) -> None:
    """A state from before this check (a home that synced as "0 added") is no proof."""
    url = dav_server.new_calendar()
    configure(home, home_url(dav_server), **account(dav_server))
    state = {"version": 1, "url": home_url(dav_server), "mode": "etag", "token": None}
    (home.state / "sync").mkdir(parents=True, exist_ok=True)
    (home.state / "sync" / "agent.json").write_text(json.dumps({**state, "items": {}}))
    result = sync(home)
    assert result.error is not None and "is a calendar home" in result.error
    assert url in result.error


def test_discover_follows_the_principal_to_the_calendar_home(
    home: Home, dav_server: DavServer
) -> None:
    if dav_server.kind == "radicale":
        principal = dav_server.parent  # Radicale's principal is its calendar home
    else:
        principal = dav_server.parent.split("/calendars/", 1)[0] + "/"
        principal += "principals/user/alice/" if dav_server.kind == "cyrus" else ""
    url = dav_server.new_calendar()
    configure(home, url, **account(dav_server))  # the login comes from the same server's entry
    found = cli(home, "sync", "--discover", principal, "--json")
    assert found.returncode == 0, found.stderr
    document = json.loads(found.stdout)
    assert not document["is_calendar"] and url in [c["url"] for c in document["calendars"]]


def test_discover_on_a_url_with_nothing_says_so(home: Home, radicale: DavServer) -> None:
    done = cli(home, "sync", "--discover", f"http://127.0.0.1:{radicale.port}/nobody/x/")
    assert done.returncode == 1 and "404" in done.stderr and "Traceback" not in done.stderr


def test_discovered_names_cannot_drive_the_terminal(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    path = url.split(str(radicale.port), 1)[1]
    # XML 1.0 carries C1 controls (U+009B is a terminal's CSI), newlines and bidi
    # overrides; C0 escapes it cannot carry.
    hostile = "Work\x9b2J&#10;rm -rf ~\u202e"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        f"<D:displayname>{hostile}</D:displayname></D:prop></D:set></D:propertyupdate>"
    )
    assert radicale.request("PROPPATCH", path, body)[0] == 207
    configure(home, url, **account(radicale))
    done = cli(home, "sync", "--discover", radicale.parent)
    assert done.returncode == 0, done.stderr
    assert "\x9b" not in done.stdout + done.stderr and "\u202e" not in done.stdout
    assert f"Work?2J?rm -rf ~?\t{url}" in done.stdout.splitlines()


def test_discover_with_a_malformed_url_is_bad_usage(home: Home) -> None:
    for url in ("foo", "ftp://example.com/", "http://[::1/"):
        done = cli(home, "sync", "--discover", url)
        assert done.returncode == 2, (url, done.stderr)
        assert "not an http(s) url" in done.stderr and "Traceback" not in done.stderr


def test_a_url_that_cannot_be_parsed_is_a_settings_error(home: Home) -> None:
    home.settings_file.write_text('calendars:\n  - name: bad\n    url: "http://[::1/x/"\n')
    done = cli(home, "sync", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "runner.yaml:3" in done.stderr and "not a valid url" in done.stderr
