"""`runner sync` against real CalDAV servers (Radicale and Xandikos on 127.0.0.1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runner.calendars.sync import CalendarSyncResult, sync_all
from runner.calendars.vdir import extract_uid, item_file_name
from runner.home import Home
from runner.settings import load_settings
from tests.caldav_servers import DavServer, event, free_port
from tests.conftest import cli
from tests.dav_proxy import CountingProxy

OVERRIDE = (
    "BEGIN:VEVENT\r\nUID:daily@example.com\r\nDTSTAMP:20260101T000000Z\r\n"
    "RECURRENCE-ID:20261127T080000Z\r\nDTSTART:20261127T100000Z\r\nDURATION:PT30M\r\n"
    "SUMMARY:Moved\r\nDESCRIPTION:its own words\r\nEND:VEVENT\r\n"
)
DAILY = event("daily@example.com", "Daily", extra=OVERRIDE).replace(
    "DURATION:PT30M\r\nSUMMARY:Daily", "DURATION:PT30M\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Daily", 1
)


def configure(home: Home, url: str, name: str = "agent", **extra: str) -> None:
    lines = ["calendars:", f"  - name: {name}", f"    url: {url}"]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in extra.items()]
    home.settings_file.write_text("\n".join(lines) + "\n")


def sync(home: Home, force: bool = False) -> CalendarSyncResult:
    result = sync_all(home, load_settings(home.settings_file), force=force)
    assert len(result.calendars) == 1
    return result.calendars[0]


def snapshot(home: Home, name: str = "agent") -> dict[str, str]:
    folder = home.calendars / name
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_first_incremental_and_quiet_sync(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "daily.ics", DAILY)
    dav_server.put(url, "one.ics", event("one", "One"))
    dav_server.put(url, "two.ics", event("two", "Two"))
    with CountingProxy(dav_server.port) as proxy:
        configure(home, proxy.url(url), **dav_server.login)

        first = sync(home)
        assert first.ok, first.error
        assert (first.mode, first.full) == ("sync-token", True)
        assert (first.added, first.changed, first.deleted, first.unchanged) == (3, 0, 0, 0)
        files = snapshot(home)
        # One object resource per file, master and override together, named by UID
        # when the UID is safe, hashed when it is not (`@`).
        assert set(files) == {"one.ics", "two.ics", item_file_name("daily@example.com", "")}
        daily = files[item_file_name("daily@example.com", "")]
        assert daily.count("BEGIN:VEVENT") == 2 and "RECURRENCE-ID" in daily
        assert extract_uid(files["one.ics"]) == "one"
        assert first.requests == proxy.total  # the client's own count is the wire's
        assert proxy.counts == {"REPORT": 2 if dav_server.kind == "xandikos" else 1}

        dav_server.put(url, "three.ics", event("three", "Three"))
        dav_server.put(url, "one.ics", event("one", "One renamed"))
        dav_server.delete(url, "two.ics")
        proxy.reset()
        second = sync(home)
        assert second.ok, second.error
        assert (second.mode, second.full) == ("sync-token", False)
        assert (second.added, second.changed, second.deleted, second.unchanged) == (1, 1, 1, 1)
        files = snapshot(home)
        assert "two.ics" not in files and "three.ics" in files
        assert "SUMMARY:One renamed" in files["one.ics"]
        # one sync-collection REPORT (Radicale and Cyrus send changed items inline), plus one
        # calendar-multiget where the server sends etags only (Xandikos); never a GET
        assert proxy.counts == {"REPORT": 2 if dav_server.kind == "xandikos" else 1}
        assert second.requests == proxy.total

        proxy.reset()
        quiet = sync(home)
        assert (quiet.added, quiet.changed, quiet.deleted, quiet.unchanged) == (0, 0, 0, 3)
        assert proxy.total == 1 == quiet.requests  # O(changes): one REPORT, no GETs
        assert snapshot(home) == files


def test_server_without_sync_support_compares_etags(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "one.ics", event("one", "One"))
    dav_server.put(url, "two.ics", event("two", "Two"))
    with CountingProxy(dav_server.port, refuse_sync=True) as proxy:
        configure(home, proxy.url(url), **dav_server.login)
        first = sync(home)
        assert first.ok, first.error
        assert (first.mode, first.added) == ("etag", 2)

        dav_server.put(url, "one.ics", event("one", "One changed"))
        dav_server.delete(url, "two.ics")
        proxy.reset()
        second = sync(home)
        assert (second.added, second.changed, second.deleted, second.unchanged) == (0, 1, 1, 0)
        assert "changed" in snapshot(home)["one.ics"] and "two.ics" not in snapshot(home)
        # etag mode remembers itself: one PROPFIND and one multiget, no sync REPORT
        # (Cyrus first challenges the client's credential-less request with a 401)
        challenge = 1 if dav_server.login else 0
        assert proxy.counts == {"PROPFIND": 1 + challenge, "REPORT": 1}
        assert second.requests == proxy.total

        proxy.reset()
        quiet = sync(home)
        assert (quiet.changed, quiet.unchanged) == (0, 1)
        assert proxy.counts == {"PROPFIND": 1 + challenge}


def test_fake_token_is_never_sent_as_a_sync_token(home: Home, radicale: DavServer) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    with CountingProxy(radicale.port) as proxy:
        configure(home, proxy.url(url))
        assert sync(home).ok
        state_file = home.state / "sync" / "agent.json"
        state = json.loads(state_file.read_text())
        state["token"] = "fake-0123456789abcdef"  # what caldav's emulated sync returns
        state_file.write_text(json.dumps(state))
        proxy.reset()
        again = sync(home)
        assert again.ok and again.mode == "etag" and again.unchanged == 1
        assert proxy.counts == {"PROPFIND": 1}


def test_a_token_the_server_forgot_means_a_full_sync(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "one.ics", event("one"))
    dav_server.put(url, "two.ics", event("two"))
    configure(home, url, **dav_server.login)
    assert sync(home).added == 2
    state_file = home.state / "sync" / "agent.json"
    state = json.loads(state_file.read_text())
    # Radicale answers 403, Xandikos 412, both with DAV:valid-sync-token
    state["token"] = "http://radicale.org/ns/sync/" + "0" * 64
    state_file.write_text(json.dumps(state))
    dav_server.delete(url, "two.ics")
    result = sync(home)
    assert result.ok and result.full and result.mode == "sync-token", result.error
    assert (result.deleted, result.unchanged) == (1, 1) and set(snapshot(home)) == {"one.ics"}
    assert json.loads(state_file.read_text())["token"] != state["token"]


def test_the_long_way_through_caldav_gives_the_same_snapshot(
    home: Home, dav_server: DavServer, tmp_path: Path
) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "daily.ics", DAILY)
    dav_server.put(url, "one.ics", event("one"))
    other = Home(tmp_path / "other")
    other.root.mkdir()
    configure(home, url, **dav_server.login)
    with CountingProxy(dav_server.port, refuse_quick=True) as proxy:
        # `other` syncs through a proxy that turns the plain quick request away (503),
        # so every listing goes through caldav's client.
        configure(other, proxy.url(url), **dav_server.login)
        quick, slow = sync(home), sync(other)
        assert quick.ok and slow.ok, (quick.error, slow.error)
        assert proxy.refused == 1
        assert snapshot(home) == snapshot(other) and len(snapshot(home)) == 2

        dav_server.put(url, "one.ics", event("one", "One renamed"))
        dav_server.delete(url, "daily.ics")
        dav_server.put(url, "two.ics", event("two"))
        quick, slow = sync(home), sync(other)
        assert proxy.refused == 2
    counts = (1, 1, 1, 0)
    assert (slow.added, slow.changed, slow.deleted, slow.unchanged) == counts
    assert (quick.added, quick.changed, quick.deleted, quick.unchanged) == counts
    assert snapshot(home) == snapshot(other)


def test_lost_or_corrupt_state_means_a_correct_full_sync(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put_many(url, {f"e{i}.ics": event(f"e{i}", f"E{i}") for i in range(4)})
    configure(home, url, **dav_server.login)
    assert sync(home).added == 4
    state_file = home.state / "sync" / "agent.json"
    before = {name: (home.calendars / "agent" / name).stat().st_mtime_ns for name in snapshot(home)}

    state_file.unlink()
    dav_server.delete(url, "e0.ics")
    dav_server.put(url, "e1.ics", event("e1", "E1 changed"))
    result = sync(home)
    assert result.ok and result.full
    assert (result.added, result.changed, result.deleted, result.unchanged) == (0, 1, 1, 2)
    files = snapshot(home)
    assert set(files) == {"e1.ics", "e2.ics", "e3.ics"} and "E1 changed" in files["e1.ics"]
    # identical items are not rewritten (readers caching by mtime stay warm)
    assert (home.calendars / "agent" / "e2.ics").stat().st_mtime_ns == before["e2.ics"]

    state_file.write_text("{not json")
    dav_server.put(url, "e5.ics", event("e5"))
    result = sync(home)
    assert result.ok and result.full and result.added == 1 and "e5.ics" in snapshot(home)

    # a file removed by hand comes back on the next sync, even with a valid token
    (home.calendars / "agent" / "e2.ics").unlink()
    result = sync(home)
    assert result.ok and not result.full and result.changed == 1 and "e2.ics" in snapshot(home)


def test_emptied_calendar_is_refused_unless_forced(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put(url, "one.ics", event("one"))
    dav_server.put(url, "two.ics", event("two"))
    configure(home, url, **dav_server.login)
    assert sync(home).added == 2
    dav_server.delete(url, "one.ics")
    dav_server.delete(url, "two.ics")
    kept = tree(home.root)

    done = cli(home, "sync")
    assert done.returncode == 1
    assert "sync agent" in done.stderr and "refusing" in done.stderr and "--force" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree(home.root) == kept  # snapshot and sync state untouched

    # with the state gone, an empty answer is still no licence to delete
    (home.state / "sync" / "agent.json").unlink()
    assert not sync(home).ok and len(snapshot(home)) == 2

    forced = cli(home, "sync", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    document = json.loads(forced.stdout)
    assert document["ok"] and document["calendars"][0]["deleted"] == 2
    assert snapshot(home) == {}


HOSTILE = ["../../x", "a/b", "x" * 300, "événement-ü", "..", ".hidden", "-n", "a\\b"]


def test_hostile_uids_stay_inside_the_calendar_folder(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    for index, uid in enumerate(HOSTILE):
        dav_server.put(url, f"h{index}.ics", event(uid, f"Hostile {index}"))
    configure(home, url, **dav_server.login)
    outside_before = tree(home.root.parent)
    result = sync(home)
    assert result.ok and result.added == len(HOSTILE), result.error

    files = snapshot(home)
    assert len(files) == len(HOSTILE)
    for name in files:
        assert name.endswith(".ics") and not name.startswith(".") and len(name) < 120
        assert (home.calendars / "agent" / name).resolve().parent == (
            home.calendars / "agent"
        ).resolve()
    # every item arrived (servers may re-escape a UID: `a\\b` comes back as `a\\\\b`)
    summaries = sorted(line for t in files.values() for line in t.splitlines() if "SUMMARY" in line)
    assert summaries == sorted(f"SUMMARY:Hostile {i}" for i in range(len(HOSTILE)))
    # nothing else changed anywhere around the home, apart from the snapshot and state
    outside_after = tree(home.root.parent)
    new = set(outside_after) - set(outside_before)
    assert all(p.startswith(("home/calendars/agent/", "home/.runner/")) for p in new), new


def test_file_names_follow_vdirsyncers_rule() -> None:
    assert item_file_name("abc-DEF_1.2+3", "/c/x.ics") == "abc-DEF_1.2+3.ics"
    for uid in [*HOSTILE, "a\0b", "x@example.com", ""]:
        name = item_file_name(uid, "/c/x.ics")
        assert len(name) == 44 and name.endswith(".ics") and name[:-4].isalnum()
    assert item_file_name(None, "/c/a.ics") != item_file_name(None, "/c/b.ics")
    assert item_file_name("x" * 100, "") == "x" * 100 + ".ics"
    assert item_file_name("x" * 101, "") != "x" * 101 + ".ics"


def test_uid_is_read_from_the_event_not_an_alarm() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VALARM\r\nUID:alarm\r\nEND:VALARM\r\n"
        'UID;X-P="a:b":real-\r\n uid\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'
    )
    assert extract_uid(text) == "real-uid"
    assert extract_uid("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") is None


def test_wrong_password_and_password_sources(home: Home, radicale_htpasswd: DavServer) -> None:
    server = radicale_htpasswd
    url = server.new_calendar()
    server.put(url, "one.ics", event("one"))
    configure(home, url, username="user", password_env="CALDAV_PASSWORD")

    wrong = cli(home, "sync", env={"CALDAV_PASSWORD": "not-the-password"})
    assert wrong.returncode == 1
    assert "sync agent" in wrong.stderr and "401" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "not-the-password" not in wrong.stdout + wrong.stderr
    assert snapshot(home) == {}

    missing = cli(home, "sync")
    assert missing.returncode == 1 and "CALDAV_PASSWORD" in missing.stderr

    right = cli(home, "sync", "--json", env={"CALDAV_PASSWORD": server.password})
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["calendars"][0]["added"] == 1
    assert server.password not in right.stdout + right.stderr

    secret_file = home.root.parent / "secret.txt"
    secret_file.write_text(server.password + "\n")
    configure(home, url, username="user", password_cmd=f"cat {secret_file}")
    server.put(url, "two.ics", event("two"))
    by_command = sync(home)
    assert by_command.ok and by_command.added == 1, by_command.error
    configure(home, url, username="user", password_cmd="exit 3")
    failed = sync(home)
    assert failed.error == "password_cmd failed with exit status 3"

    for data in tree(home.root).values():  # never stored anywhere in the home
        assert server.password.encode() not in data


def test_server_down_and_missing_collection_leave_the_snapshot(
    home: Home, radicale: DavServer
) -> None:
    url = radicale.new_calendar()
    radicale.put(url, "one.ics", event("one"))
    configure(home, url)
    assert sync(home).added == 1
    kept = tree(home.root)

    configure(home, f"http://127.0.0.1:{free_port()}/user/cal/")  # nothing listens there
    down = cli(home, "sync")
    assert down.returncode == 1, down.stderr
    assert "sync agent" in down.stderr and "Connection refused" in down.stderr
    assert "Traceback" not in down.stderr

    configure(home, url.replace("/test-", "/missing-"))
    missing = cli(home, "sync", "--json")
    assert missing.returncode == 1
    document = json.loads(missing.stdout)
    assert not document["ok"] and "404" in document["calendars"][0]["error"]

    configure(home, url.replace("http://", "https://"))  # TLS to a plain-HTTP port
    tls = sync(home)
    assert tls.error is not None and tls.error.startswith("TLS error")

    home.settings_file.write_text(kept["runner.yaml"].decode())
    assert tree(home.root) == kept


def test_progress_counts_downloaded_items(home: Home, dav_server: DavServer) -> None:
    url = dav_server.new_calendar()
    dav_server.put_many(url, {f"p{i}.ics": event(f"p{i}") for i in range(3)})
    configure(home, url, **dav_server.login)
    seen: list[tuple[str, int, int]] = []
    result = sync_all(
        home, load_settings(home.settings_file), progress=lambda *args: seen.append(args)
    )
    assert result.ok and seen == [("agent", 3, 3)]
    assert len(snapshot(home)) == 3


def test_no_caldav_calendars_is_a_quiet_success(home: Home) -> None:
    assert sync_all(home, load_settings(home.settings_file)).calendars == ()
    os.makedirs(home.calendars / "local", exist_ok=True)
    home.settings_file.write_text("calendars:\n  - name: local\n")
    assert sync_all(home, load_settings(home.settings_file)).ok
