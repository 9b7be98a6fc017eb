"""Calendars as real exporters write them, and as hostile ones do (issues 16 and 13.6).

The files under tests/ics/ are written here in the style of each exporter: Google
Calendar (UTC times, X-WR-TIMEZONE, a moved instance), Apple Calendar (X-APPLE-*
properties, a birthday from 1604), Outlook (Windows zone names, "Customized Time
Zone", X-ALT-DESC), Thunderbird (X-MOZ-*, a libical "globally unique" TZID) and a
libical-style iTIP stream (several VCALENDARs in one file, RFC 5545 section 3.4).
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from runner.brain.offline import OfflineBrain
from runner.calendars.folders import list_ics
from runner.calendars.lines import why_failed
from runner.calendars.parse import library_warnings, parse_file
from runner.check import check_home
from runner.errors import Problem
from runner.home import Home
from runner.run.tick import tick
from runner.schedule.agenda import upcoming
from runner.schedule.cache import load_calendars
from runner.schedule.expand import occurrences_between
from runner.settings import Settings
from tests.conftest import cli
from tests.fakes import FakeClock

FIXTURES = Path(__file__).parent / "ics"
EXPORTERS = ("apple.ics", "google.ics", "outlook.ics", "stream.ics", "thunderbird.ics")


def utc(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def copy_fixtures(home: Home, *names: str) -> Path:
    folder = home.calendars / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def agenda(home: Home, start: datetime, end: datetime) -> list[tuple[str, str, str]]:
    calendars = load_calendars(home, Settings())
    found = occurrences_between(calendars, start, end)
    assert [str(p) for p in calendars.problems] == []
    return [(o.fire_at.strftime("%m-%d %H:%M"), o.stamp, o.title) for o in found]


def write(home: Home, text: str, name: str = "x.ics") -> Path:
    folder = home.calendars / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.strip().replace("\n", "\r\n").encode() + b"\r\n")
    return path


def calendar(body: str, head: str = "") -> str:
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{head}{body.strip()}\nEND:VCALENDAR"


GOOD = "BEGIN:VEVENT\nUID:good\nDTSTART:20261126T090000Z\nSUMMARY:Good\nEND:VEVENT"


# -- the exporters' files ---------------------------------------------------------------


def test_google_export_follows_x_wr_timezone(home: Home) -> None:
    copy_fixtures(home, "google.ics")
    assert agenda(home, utc(23), utc(30, 12)) == [
        ("11-23 08:00", "20261123T080000Z", "Standup notes"),
        # A weekly event written in UTC (09:00 CEST in October) keeps 09:00 Berlin
        # after the clocks went back, because the calendar says X-WR-TIMEZONE.
        ("11-24 08:00", "20261124T080000Z", "Imported: plan the week"),
        ("11-26 10:00", "20261126T080000Z", "Standup notes (late)"),
        ("11-27 15:00", "20261127T150000Z", "Draft the newsletter"),
        # Floating 18:00 is Berlin time here (X-WR-TIMEZONE), not the local zone (UTC).
        ("11-27 17:00", "20261127T170000Z", "Evening review (floating)"),
        ("11-28 09:00", "20261128", "Tidy the notes folder"),
        ("11-30 08:00", "20261130T080000Z", "Standup notes"),
    ]


def test_apple_outlook_and_thunderbird_exports(home: Home) -> None:
    copy_fixtures(home, "apple.ics", "outlook.ics", "thunderbird.ics")
    found = agenda(home, utc(26), utc(30, 12))
    assert found == [
        ("11-26 06:00", "20261126T060000Z", "Morning plan"),
        ("11-26 16:30", "20261126T163000Z", "Inbox zero"),
        ("11-27 06:00", "20261127T060000Z", "Morning plan"),
        ("11-27 09:00", "20261127", "Ada's birthday"),  # yearly since 1604
        ("11-27 15:30", "20261127T153000Z", "Weekly wrap-up"),  # W. Europe Standard Time
        ("11-27 16:30", "20261127T163000Z", "Inbox zero"),
        # 11-28: the EXDATE; 11-29: a libical "globally unique" TZID, no VTIMEZONE.
        ("11-29 06:00", "20261129T060000Z", "Morning plan"),
        ("11-29 09:00", "20261129T090000Z", "Water the plants"),
        ("11-30 06:00", "20261130T060000Z", "Morning plan"),
        ("11-30 08:00", "20261130T080000Z", "Budget check-in"),  # Customized Time Zone
    ]
    december = agenda(home, utc(4, month=12), utc(12, month=12))
    wrap_ups = [row for row in december if row[2].startswith("Weekly wrap-up")]
    assert wrap_ups == [  # 12-04 excluded; 12-11 moved to 12:30 Berlin, same identity
        ("12-11 11:30", "20261211T153000Z", "Weekly wrap-up (early: holiday party)")
    ]


def test_a_stream_of_several_calendars_is_read_whole(home: Home) -> None:
    copy_fixtures(home, "stream.ics")
    found = agenda(home, utc(23), utc(15, month=12))
    assert found == [
        # The REQUEST with SEQUENCE:1 replaces the PUBLISH before it; the REPLY
        # (no DTSTART) and the VFREEBUSY are not events to run.
        ("11-26 21:00", "20261126T210000Z", "Release review (moved)"),
        # A zone defined by the stream's own VTIMEZONE (EST, -05:00).
        ("11-30 19:00", "20261130T190000Z", "Fortnightly phone conference"),
        # An override in a later VCALENDAR than its master still moves the instance.
        ("12-03 21:00", "20261201T210000Z", "Working group (moved to Thursday)"),
        ("12-14 19:00", "20261214T190000Z", "Fortnightly phone conference"),
    ]


def test_each_calendar_of_a_stream_keeps_its_own_x_wr_timezone(home: Home) -> None:
    floating = "BEGIN:VEVENT\nUID:{u}\nDTSTART:20261126T090000\nSUMMARY:{u}\nEND:VEVENT"
    write(
        home,
        calendar(floating.format(u="tokyo"), "X-WR-TIMEZONE:Asia/Tokyo\n")
        + "\n"
        + calendar(floating.format(u="local")),
    )
    assert agenda(home, utc(25), utc(27)) == [
        ("11-26 00:00", "20261126T000000Z", "tokyo"),
        ("11-26 09:00", "20261126T090000", "local"),  # floating: the local zone (UTC)
    ]


def test_a_cache_from_before_several_calendars_a_file_is_not_served(home: Home) -> None:
    folder = copy_fixtures(home, "stream.ics")
    ((path, signature),) = list_ics(folder)
    stale = {  # what the version-2 parser cached for this very file: rejected whole
        "version": 2,
        "zone": "UTC",
        "files": {
            str(path): {
                "sig": list(signature),
                "problems": [[None, "not iCalendar: Found multiple components"]],
                "expansion": {"at": "09:00 UTC", "start": 0, "end": 2e10, "events": [], "rows": []},
            }
        },
    }
    cache = home.state / "cache" / "calendars.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(stale), encoding="utf-8")
    shown = upcoming(home, Settings(), utc(26), 1)
    assert ([row.title for row in shown.rows], shown.problems) == (["Release review (moved)"], ())


def test_runner_check_and_next_are_clean_on_exporter_files(home: Home) -> None:
    copy_fixtures(home, *EXPORTERS)
    checked = cli(home, "check")
    assert (checked.returncode, checked.stdout) == (0, ""), checked.stderr
    (summary,) = checked.stderr.strip().splitlines()
    assert summary.startswith("checked ") and summary.endswith(" files: 0 problem(s)")
    shown = cli(home, "next", "--days", "7")  # a cold cache: every file is parsed
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""  # no raw library warning (GloballyUniqueTZIDGuessed)
    assert "Inbox zero" in shown.stdout


# -- one line per problem, at the right line ---------------------------------------------

HOSTILE = {
    "dtstart twice": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nDTSTART:20261127T090000Z\nEND:VEVENT",
        6,
        "DTSTART given 2 times (once allowed); event skipped",
    ),
    "nul in a value": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:2026\x001126\nEND:VEVENT",
        6,
        "bad DTSTART: Expected datetime, date, or time. Got: '2026\\x001126'; event skipped",
    ),
    "override in an unknown zone": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261127T100000Z\n"
        "RECURRENCE-ID;TZID=Nowhere/\u202eRed:20261127T090000\nEND:VEVENT",
        12,
        "unknown TZID 'Nowhere/\\u202eRed' in RECURRENCE-ID; event skipped",
    ),
    "override line that does not parse": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261127T100000Z\n"
        "RECURRENCE-ID;TZID=Nowhere/\x1b[31mRed:20261127T090000\nEND:VEVENT",
        12,
        "RECURRENCE-ID line cannot be parsed; event skipped",
    ),
    "end without begin": ("END:VEVENT", 4, "not iCalendar: END:VEVENT without a matching BEGIN"),
    "never closed": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z",
        4,
        "not iCalendar: BEGIN:VEVENT is never closed",
    ),
    "rdate as a time": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nRDATE;VALUE=TIME:100000\nEND:VEVENT",
        7,
        "RDATE is not a date or date-time; event skipped",
    ),
    "bad zone of a calendar": (
        "X-WR-TIMEZONE:../../etc/\x07passwd\nBEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000\n"
        "END:VEVENT",
        4,
        "unknown X-WR-TIMEZONE '../../etc/\\x07passwd'; this calendar's events skipped",
    ),
    "sequence twice": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nSEQUENCE:1\nSEQUENCE:2\nEND:VEVENT",
        7,
        "SEQUENCE given 2 times (once allowed); event skipped",
    ),
    "a sequence that is no number": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nSEQUENCE:abc\nEND:VEVENT",
        7,
        "bad SEQUENCE: Expected int, got: abc; event skipped",
    ),
    "duration twice": (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261126T090000Z\nDURATION:PT1H\nDURATION:PT2H\nEND:VEVENT",
        7,
        "DURATION given 2 times (once allowed); event skipped",
    ),
    "a zone with two names": (
        "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nTZID:Europe/Paris\nEND:VTIMEZONE\n" + GOOD,
        6,
        "not iCalendar: VTIMEZONE with TZID given 2 times",
    ),
    "a calendar with two zones": (
        "X-WR-TIMEZONE:Europe/Berlin\nX-WR-TIMEZONE:UTC\n" + GOOD,
        4,
        "X-WR-TIMEZONE given 2 times; this calendar's events skipped",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_problems_are_one_clean_line_at_their_own_line(home: Home, case: str) -> None:
    body, line, message = HOSTILE[case]
    path = write(home, calendar(body))
    problems = parse_file(path).problems
    assert [(p.line, p.message) for p in problems] == [(line, message)]
    text = str(problems[0])
    assert text == f"{path}:{line}: {message}" and text.isprintable()


def test_text_before_the_calendar_and_an_empty_file(home: Home) -> None:
    junk = write(home, "this is not a calendar\n" + calendar(GOOD), "junk.ics")
    (problem,) = parse_file(junk).problems
    assert (problem.line, problem.message) == (
        1,
        "not iCalendar: Content line could not be parsed into parts: 'this is not a calendar':"
        " Invalid content line",
    )
    empty = home.calendars / "agent" / "empty.ics"
    empty.write_bytes(b"")
    assert [p.message for p in parse_file(empty).problems] == [
        "not iCalendar: no BEGIN:VCALENDAR in the file"
    ]


def test_hostile_shapes_nesting_and_file_names(home: Home) -> None:
    deep = "BEGIN:X-NEST\n" * 5000 + "END:X-NEST\n" * 5000
    path = write(home, calendar(deep + GOOD), "deep.ics")
    assert [(p.line, p.message) for p in parse_file(path).problems] == [
        (23, "not iCalendar: components nested more than 20 deep")
    ]
    named = write(home, calendar("END:VEVENT"), "evil\n\x1b[2J.ics")
    (problem,) = check_home(home, now=utc(26)).problems[1:]
    assert str(problem).isprintable() and "evil\\x0a\\x1b[2J.ics:4:" in str(problem)
    assert problem.path != str(named)  # escaped, not the raw name


def test_check_finds_what_expansion_refuses_with_the_line(home: Home) -> None:
    path = write(
        home,
        calendar(
            GOOD + "\nBEGIN:VEVENT\nUID:rdate\nDTSTART:20261126T090000Z\n"
            "RDATE;VALUE=TIME:100000\nEND:VEVENT\n"
            "BEGIN:VEVENT\nUID:backwards\nDTSTART:20261126T090000Z\n"
            "RRULE:FREQ=DAILY;INTERVAL=-1\nEND:VEVENT\n"
            # Valid, but dateutil would step through 3.6 million minutes to reach today.
            "BEGIN:VEVENT\nUID:old-minutely\nDTSTART:20200101T000000Z\n"
            "RRULE:FREQ=MINUTELY\nEND:VEVENT"
        ),
    )
    found = [str(p) for p in check_home(home, now=utc(26, 12)).problems]
    assert found == [
        f"{path}:12: RDATE is not a date or date-time; event skipped",
        f"{path}:17: RRULE INTERVAL=-1: must be 1 or more; event skipped",
        f"{path}:22: cannot be expanded (its rule steps through 3,652,680 instances from"
        " DTSTART to reach 2026-12-11, more than 100,000: move DTSTART closer); event skipped",
    ]
    assert all(p.isprintable() for p in found)


def test_python_internals_are_not_a_message() -> None:
    assert why_failed(TypeError("'<' not supported between 'time' and 'datetime'")) == (
        "the calendar library failed on it: TypeError"
    )
    assert (
        why_failed(ValueError("day is out of range\nfor month"))
        == "day is out of range\\x0afor month"
    )


# -- degenerate rules (issue 13, defect 6) ------------------------------------------------

DEGENERATE = {
    "FREQ=MINUTELY;INTERVAL=0": "RRULE INTERVAL=0: must be 1 or more",
    "FREQ=DAILY;COUNT=0": "RRULE COUNT=0: must be 1 or more",
    "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=400": "RRULE BYSETPOS=400: out of range",
    "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0": "RRULE BYSETPOS=0: out of range",
    "FREQ=DAILY;UNTIL=20200101T000000Z": (
        "RRULE UNTIL is before DTSTART: the rule has no occurrence"
    ),
    "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z": (
        "RRULE has both COUNT and UNTIL (RFC 5545 allows one)"
    ),
    "FREQ=FORTNIGHTLY": "bad RRULE: Expected frequency, got: FORTNIGHTLY",
}


def degenerate_file(home: Home, rule: str, start: str = "20261126T090000Z") -> Path:
    bad = f"BEGIN:VEVENT\nUID:bad\nDTSTART:{start}\nRRULE:{rule}\nSUMMARY:Bad\nEND:VEVENT"
    return write(home, calendar(GOOD + "\n" + bad))


@pytest.mark.parametrize("rule", sorted(DEGENERATE))
def test_a_degenerate_rule_is_a_problem_of_its_event_only(home: Home, rule: str) -> None:
    path = degenerate_file(home, rule)
    assert [str(p) for p in check_home(home, now=utc(26)).problems] == [
        f"{path}:12: {DEGENERATE[rule]}; event skipped"
    ]
    assert agenda_titles(home) == ["Good"]


def agenda_titles(home: Home) -> list[str]:
    calendars = load_calendars(home, Settings())
    return [o.title for o in occurrences_between(calendars, utc(25), utc(28))]


@pytest.mark.parametrize(
    ("start", "rule", "message"),
    [
        ("00010101T000000Z", "FREQ=YEARLY", "DTSTART in year 1 cannot be scheduled"),
        ("99991231T230000Z", "FREQ=DAILY", "DTSTART in year 9999 cannot be scheduled"),
    ],
)
def test_years_one_and_9999(home: Home, start: str, rule: str, message: str) -> None:
    path = degenerate_file(home, rule, start)
    assert [str(p) for p in check_home(home, now=utc(26)).problems] == [
        f"{path}:11: {message}; event skipped"
    ]
    assert agenda_titles(home) == ["Good"]


def test_an_until_in_year_9999_means_forever(home: Home) -> None:
    degenerate_file(home, "FREQ=DAILY;UNTIL=99991231T235959Z")
    assert check_home(home, now=utc(26)).problems == ()
    assert agenda_titles(home) == ["Bad", "Good", "Bad"]  # same time: by series key


class OverBudget(BaseException):
    """Not an Exception: no `except Exception` in the code under test can swallow it."""


@contextmanager
def call_budget(limit: int) -> Iterator[Callable[[], int]]:
    """Count Python calls (generator steps included); stop the test past `limit`."""
    calls = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > limit:
            raise OverBudget(f"more than {limit} calls")

    sys.settrace(tracer)
    try:
        yield lambda: calls
    finally:
        sys.settrace(None)


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        ("FREQ=MINUTELY;INTERVAL=0", "20261126T090000Z"),
        ("FREQ=SECONDLY", "00020101T000000Z"),
        ("FREQ=MINUTELY", "20200101T000000Z"),
    ],
)
def test_next_and_tick_stay_bounded_on_degenerate_rules(home: Home, rule: str, start: str) -> None:
    degenerate_file(home, rule, start)
    now = utc(26, 8)
    with call_budget(300_000) as calls:
        shown = upcoming(home, Settings(), now, 7)
        ticked = tick(
            home, Settings(), OfflineBrain(), FakeClock(now + timedelta(hours=1, minutes=1))
        )
    assert [row.title for row in shown.rows][:1] == ["Good"]
    assert len(shown.problems) == 1 and shown.problems[0].line == 12
    assert [o.task_id.startswith("good-") for o in ticked.outcomes] == [True]
    assert [p.line for p in ticked.problems] == [12]
    assert calls() < 300_000  # about 30,000 here (the first includes importing icalendar)


# -- the libraries' warnings ---------------------------------------------------------------


def test_library_warnings_become_one_line_problems_of_the_file() -> None:
    problems: list[Problem] = []
    library = "/venv/lib/python3.11/site-packages/dateutil/rrule.py"
    with warnings.catch_warnings(record=True) as passed_on:
        warnings.simplefilter("always")
        with library_warnings("cal.ics", problems):
            warnings.warn_explicit("odd\nrule", UserWarning, library, 1)
            warnings.warn_explicit("guessed", DeprecationWarning, library, 2)
            warnings.warn_explicit("not ours", UserWarning, "/app/other.py", 3)
    assert problems == [Problem("cal.ics", None, "UserWarning: odd\\x0arule")]
    assert [str(w.message) for w in passed_on] == ["not ours"]
