"""Occurrence expansion over local .ics files: each case of SPEC "Scheduling rules"."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from runner import keys
from runner.check import check_home
from runner.home import Home
from runner.schedule.cache import CalendarCache, Calendars, load_calendars
from runner.schedule.expand import occurrences_between
from runner.schedule.occurrence import Occurrence
from runner.settings import Settings
from tests.fakes import write_ics

BERLIN = ZoneInfo("Europe/Berlin")


def expand(
    home: Home, start: datetime, end: datetime, settings: Settings | None = None
) -> list[Occurrence]:
    return occurrences_between(load_calendars(home, settings or Settings()), start, end)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_dst_transition_in_berlin_keeps_local_time(home: Home) -> None:
    write_ics(
        home,
        "daily.ics",
        """
BEGIN:VEVENT
UID:daily-berlin
DTSTART;TZID=Europe/Berlin:20261023T090000
DURATION:PT15M
SUMMARY:Briefing
RRULE:FREQ=DAILY
END:VEVENT
""",
    )
    found = expand(home, utc(2026, 10, 23), utc(2026, 10, 28))
    assert [o.fire_at.hour for o in found] == [7, 7, 8, 8, 8]  # CEST, then CET (Oct 25)
    assert all(isinstance(o.start, datetime) and o.start.hour == 9 for o in found)
    assert [o.stamp for o in found][1:3] == ["20261024T070000Z", "20261025T080000Z"]
    first = found[0].start
    assert isinstance(first, datetime) and first.utcoffset() == timedelta(hours=2)


def test_dst_gap_and_repeat_fire_once_per_day(home: Home) -> None:
    write_ics(
        home,
        "night.ics",
        """
BEGIN:VEVENT
UID:night
DTSTART;TZID=Europe/Berlin:20260327T023000
SUMMARY:Night job
RRULE:FREQ=DAILY;COUNT=240
END:VEVENT
""",
    )
    spring = expand(home, utc(2026, 3, 28), utc(2026, 3, 31))
    assert [o.start.day for o in spring if isinstance(o.start, datetime)] == [28, 29, 30]
    assert len({o.fire_at for o in spring}) == 3
    autumn = expand(home, utc(2026, 10, 24), utc(2026, 10, 27))
    assert len(autumn) == 3  # 02:30 happens twice on Oct 25: it fires once
    assert len({o.stamp for o in autumn}) == 3


def test_floating_time_is_local_time(home: Home) -> None:
    write_ics(
        home,
        "float.ics",
        """
BEGIN:VEVENT
UID:floating
DTSTART:20261126T090000
SUMMARY:Floating
END:VEVENT
""",
    )
    calendars = load_calendars(home, Settings())
    in_new_york = dataclasses.replace(calendars, zone=ZoneInfo("America/New_York"))
    (occ,) = occurrences_between(in_new_york, utc(2026, 11, 26), utc(2026, 11, 27))
    assert occ.fire_at == utc(2026, 11, 26, 14)  # 09:00 EST
    assert occ.stamp == "20261126T090000"  # floating: no Z
    assert occ.start == datetime(2026, 11, 26, 9)


def test_all_day_fires_at_all_day_at_local(home: Home) -> None:
    write_ics(
        home,
        "allday.ics",
        """
BEGIN:VEVENT
UID:allday
DTSTART;VALUE=DATE:20261126
SUMMARY:Whole day
END:VEVENT
""",
    )
    settings = Settings(all_day_at=time(7, 30))
    calendars = dataclasses.replace(load_calendars(home, settings), zone=BERLIN)
    (occ,) = occurrences_between(calendars, utc(2026, 11, 25), utc(2026, 11, 28))
    assert occ.start == date(2026, 11, 26) and occ.all_day
    assert occ.stamp == "20261126"
    assert occ.fire_at == utc(2026, 11, 26, 6, 30)


def test_two_occurrences_on_one_day_are_two_tasks(home: Home) -> None:
    write_ics(
        home,
        "twice.ics",
        """
BEGIN:VEVENT
UID:twice
DTSTART:20261126T090000Z
SUMMARY:Twice
RRULE:FREQ=DAILY;BYHOUR=9,17
END:VEVENT
""",
    )
    found = expand(home, utc(2026, 11, 26), utc(2026, 11, 27))
    assert [o.task_id for o in found] == [
        f"{keys.series_key('twice')}/20261126T090000Z",
        f"{keys.series_key('twice')}/20261126T170000Z",
    ]


def test_exdate_rdate_and_an_infinite_rule(home: Home) -> None:
    write_ics(
        home,
        "weekly.ics",
        """
BEGIN:VEVENT
UID:weekly
DTSTART:20261102T100000Z
SUMMARY:Weekly
RRULE:FREQ=WEEKLY
EXDATE:20261109T100000Z
RDATE:20261111T150000Z
END:VEVENT
""",
    )
    found = expand(home, utc(2026, 11, 1), utc(2026, 11, 20))
    assert [o.stamp for o in found] == [
        "20261102T100000Z",
        "20261111T150000Z",
        "20261116T100000Z",
    ]
    far = expand(home, utc(2036, 11, 1), utc(2036, 11, 8))  # no end: bounded by the window
    assert len(far) == 1 and far[0].fire_at.year == 2036


def test_moved_occurrence_keeps_its_stamp_and_override_text_wins(home: Home) -> None:
    write_ics(
        home,
        "moved.ics",
        """
BEGIN:VEVENT
UID:standup
DTSTART;TZID=Europe/Berlin:20261123T090000
SUMMARY:Standup
DESCRIPTION:The usual notes
RRULE:FREQ=DAILY;COUNT=5
END:VEVENT
BEGIN:VEVENT
UID:standup
RECURRENCE-ID;TZID=Europe/Berlin:20261124T090000
DTSTART;TZID=Europe/Berlin:20261124T160000
SUMMARY:Standup (late)
DESCRIPTION:Special agenda today
END:VEVENT
BEGIN:VEVENT
UID:standup
RECURRENCE-ID;TZID=Europe/Berlin:20261125T090000
DTSTART;TZID=Europe/Berlin:20261125T100000
END:VEVENT
""",
    )
    found = {o.stamp: o for o in expand(home, utc(2026, 11, 23), utc(2026, 11, 28))}
    assert len(found) == 5
    moved = found["20261124T080000Z"]  # identity: the original 09:00 Berlin
    assert moved.fire_at == utc(2026, 11, 24, 15)
    assert moved.original_start == datetime(2026, 11, 24, 9, tzinfo=BERLIN)
    assert (moved.title, moved.description) == ("Standup (late)", "Special agenda today")
    bare = found["20261125T080000Z"]  # an override without its own text: the master's
    assert bare.fire_at == utc(2026, 11, 25, 9)
    assert (bare.title, bare.description) == ("Standup", "The usual notes")
    assert found["20261123T080000Z"].description == "The usual notes"


def test_cancelled_event_and_cancelled_occurrence_are_skipped(home: Home) -> None:
    write_ics(
        home,
        "cancel.ics",
        """
BEGIN:VEVENT
UID:gone
DTSTART:20261126T090000Z
SUMMARY:Gone
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:series
DTSTART:20261126T100000Z
SUMMARY:Series
RRULE:FREQ=DAILY;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:series
RECURRENCE-ID:20261127T100000Z
DTSTART:20261127T100000Z
SUMMARY:Series
STATUS:CANCELLED
END:VEVENT
""",
    )
    found = expand(home, utc(2026, 11, 25), utc(2026, 12, 1))
    assert [(o.uid, o.stamp) for o in found] == [
        ("series", "20261126T100000Z"),
        ("series", "20261128T100000Z"),
    ]


def test_bad_rrule_and_unknown_tzid_are_reported_and_skipped(home: Home) -> None:
    write_ics(
        home,
        "mixed.ics",
        """
BEGIN:VEVENT
UID:good
DTSTART:20261126T090000Z
SUMMARY:Good
END:VEVENT
BEGIN:VEVENT
UID:badrule
DTSTART:20261126T090000Z
SUMMARY:Bad rule
RRULE:FREQ=SOMETIMES;UNTIL=tomorrow
END:VEVENT
BEGIN:VEVENT
UID:badzone
DTSTART;TZID=Mars/Olympus_Mons:20261126T090000
SUMMARY:Bad zone
END:VEVENT
""",
    )
    write_ics(home, "z-broken.ics", "BEGIN:VEVENT\nUID:x\nthis is not ical\nEND:VEVENT")
    calendars = load_calendars(home, Settings())
    found = occurrences_between(calendars, utc(2026, 11, 26), utc(2026, 11, 27))
    assert [o.uid for o in found] == ["good"]
    messages = sorted(str(p) for p in calendars.problems)
    assert len(messages) == 3, messages
    assert any("mixed.ics:13:" in m and "RRULE" in m.upper() for m in messages), messages
    assert any("mixed.ics:17:" in m and "Mars/Olympus_Mons" in m for m in messages), messages
    assert any("z-broken.ics:" in m for m in messages), messages
    result = check_home(home)  # `runner check` reports the same files
    assert {p.path for p in result.problems} >= {
        str(home.calendars / "agent" / "mixed.ics"),
        str(home.calendars / "agent" / "z-broken.ics"),
    }


def test_settings_calendars_and_default_folders(home: Home) -> None:
    body = "BEGIN:VEVENT\nUID:{u}\nDTSTART:20261126T090000Z\nSUMMARY:{u}\nEND:VEVENT"
    write_ics(home, "a.ics", body.format(u="in-a"), calendar="a")
    write_ics(home, "b.ics", body.format(u="in-b"), calendar="b")
    window = (utc(2026, 11, 26), utc(2026, 11, 27))
    assert sorted(o.calendar for o in expand(home, *window)) == ["a", "b"]
    from runner.settings import CalendarSettings

    only_b = Settings(calendars=(CalendarSettings("b", url="https://dav.invalid/b/"),))
    (occ,) = expand(home, *window, settings=only_b)
    assert (occ.calendar, occ.source) == ("b", "caldav")
    assert occ.path == home.calendars / "b" / "b.ics"


def test_disk_cache_serves_unchanged_files_and_ignores_corruption(home: Home) -> None:
    write_ics(
        home,
        "c.ics",
        """
BEGIN:VEVENT
UID:cached
DTSTART;TZID=Europe/Berlin:20261120T090000
SUMMARY:Cached
DESCRIPTION:from the cache
RRULE:FREQ=DAILY
END:VEVENT
""",
    )
    window = (utc(2026, 11, 26), utc(2026, 11, 30))
    first = CalendarCache(home, disk=True)
    expected = occurrences_between(first.refresh(Settings()), *window)
    first.save()
    second = CalendarCache(home, disk=True)
    calendars = second.refresh(Settings())
    assert occurrences_between(calendars, *window) == expected
    assert calendars.files[0]._parsed is None  # served without parsing the file
    # A changed file is parsed again.
    path = home.calendars / "agent" / "c.ics"
    path.write_text(path.read_text().replace("Cached", "Renamed!"), encoding="utf-8")
    third = occurrences_between(CalendarCache(home, disk=True).refresh(Settings()), *window)
    assert {o.title for o in third} == {"Renamed!"}
    # A corrupt cache is ignored.
    second.cache_path.write_text('{"version": 1, "files": {"x": [', encoding="utf-8")
    assert occurrences_between(CalendarCache(home, disk=True).refresh(Settings()), *window)
    second.cache_path.write_text(
        json.dumps({"version": 1, "zone": "UTC", "files": {str(path): {"sig": "bad"}}}),
        encoding="utf-8",
    )
    assert (
        len(occurrences_between(CalendarCache(home, disk=True).refresh(Settings()), *window)) == 4
    )


def test_memory_cache_reparses_only_changed_files(home: Home) -> None:
    body = "BEGIN:VEVENT\nUID:{u}\nDTSTART:20261126T090000Z\nSUMMARY:{u}\nEND:VEVENT"
    write_ics(home, "a.ics", body.format(u="a"))
    write_ics(home, "b.ics", body.format(u="b"))
    cache = CalendarCache(home)
    window = (utc(2026, 11, 26), utc(2026, 11, 27))
    occurrences_between(cache.refresh(Settings()), *window)
    before: dict[str, object] = {f.path.name: f for f in cache.files.values()}
    (home.calendars / "agent" / "b.ics").write_text(
        (home.calendars / "agent" / "b.ics").read_text().replace("SUMMARY:b", "SUMMARY:bee"),
        encoding="utf-8",
    )
    calendars = cache.refresh(Settings())
    after = {f.path.name: f for f in calendars.files}
    assert after["a.ics"] is before["a.ics"] and after["b.ics"] is not before["b.ics"]
    assert sorted(o.title for o in occurrences_between(calendars, *window)) == ["a", "bee"]
    (home.calendars / "agent" / "a.ics").unlink()
    assert [f.path.name for f in cache.refresh(Settings()).files] == ["b.ics"]


def test_calendars_dataclass_is_what_watch_needs(home: Home) -> None:
    calendars = load_calendars(home, Settings())
    assert isinstance(calendars, Calendars) and calendars.files == ()
    assert occurrences_between(calendars, utc(2026, 1, 1), utc(2027, 1, 1)) == []


def test_this_and_future_override_keeps_each_instance_identity(home: Home) -> None:
    write_ics(
        home,
        "range.ics",
        """
BEGIN:VEVENT
UID:range
DTSTART:20261120T090000Z
SUMMARY:Base
RRULE:FREQ=DAILY;COUNT=6
END:VEVENT
BEGIN:VEVENT
UID:range
RECURRENCE-ID;RANGE=THISANDFUTURE:20261123T090000Z
DTSTART:20261123T110000Z
SUMMARY:Moved on
END:VEVENT
""",
    )
    found = expand(home, utc(2026, 11, 20), utc(2026, 11, 30))
    assert [o.stamp for o in found] == [f"202611{d}T090000Z" for d in range(20, 26)]
    assert [o.fire_at.hour for o in found] == [9, 9, 9, 11, 11, 11]
    assert {o.title for o in found[3:]} == {"Moved on"}


def test_byte_order_mark_and_uidless_events(home: Home) -> None:
    folder = home.calendars / "agent"
    folder.mkdir(parents=True)
    text = (
        "\ufeffBEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        "BEGIN:VEVENT\r\nDTSTART:20261126T090000Z\r\nSUMMARY:No UID\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:with-bom\r\nDTSTART:20261126T100000Z\r\nSUMMARY:Fine\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    (folder / "bom.ics").write_text(text, encoding="utf-8")
    calendars = load_calendars(home, Settings())
    found = occurrences_between(calendars, utc(2026, 11, 26), utc(2026, 11, 27))
    assert [o.uid for o in found] == ["with-bom"]
    assert [(p.line, p.message) for p in calendars.problems] == [(4, "event without UID skipped")]


def test_check_reports_an_event_pointing_at_a_missing_task(home: Home) -> None:
    body = "BEGIN:VEVENT\nUID:{u}\nDTSTART:20261126T090000Z\nSUMMARY:{u}\n{d}END:VEVENT"
    write_ics(
        home,
        "refs.ics",
        "\n".join(
            [
                body.format(u="good", d="DESCRIPTION:task: hello\\nmore\n"),
                body.format(u="dangling", d="DESCRIPTION:task: no-such-task\n"),
                body.format(u="../../evil", d="DESCRIPTION:task: ../../secret\n"),
            ]
        ),
    )
    path = str(home.calendars / "agent" / "refs.ics")
    found = sorted(str(p) for p in check_home(home).problems)
    assert found == [
        f"{path}:14: event {keys.series_key('dangling')}: no such task: no-such-task"
        f" (looked for {home.tasks / 'no-such-task.yaml'})",
        f"{path}:20: event {keys.series_key('../../evil')}: invalid task id '../../secret'",
    ]
