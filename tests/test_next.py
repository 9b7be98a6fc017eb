"""`runner next`: the agenda of upcoming occurrences."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from runner import keys
from runner.home import Home
from runner.schedule.agenda import upcoming
from runner.settings import Settings
from tests.conftest import cli
from tests.fakes import write_ics

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def write_calendar(home: Home, body: str, name: str = "agent", file: str = "e.ics") -> None:
    write_ics(home, file, body, calendar=name)


BODY = """
BEGIN:VEVENT
UID:daily@example.com
DTSTART;TZID=Europe/Berlin:20261101T090000
SUMMARY:Daily briefing
RRULE:FREQ=DAILY
END:VEVENT
BEGIN:VEVENT
UID:allday@example.com
DTSTART;VALUE=DATE:20261128
SUMMARY:Holiday prep
END:VEVENT
BEGIN:VEVENT
UID:past@example.com
DTSTART:20260101T110000Z
SUMMARY:Already happened
END:VEVENT
"""


def test_upcoming_lists_the_window_in_order(home: Home) -> None:
    write_calendar(home, BODY)
    agenda = upcoming(home, Settings(), NOW, 3)
    got = [(row.when.isoformat(), row.title, row.calendar) for row in agenda.rows]
    assert got == [
        ("2026-11-27T08:00:00+00:00", "Daily briefing", "agent"),
        ("2026-11-28T08:00:00+00:00", "Daily briefing", "agent"),
        ("2026-11-28T09:00:00+00:00", "Holiday prep", "agent"),
        ("2026-11-29T08:00:00+00:00", "Daily briefing", "agent"),
    ]
    assert agenda.rows[2].all_day and agenda.rows[2].series_key == keys.series_key(
        "allday@example.com"
    )
    assert agenda.problems == ()
    assert [r.title for r in upcoming(home, Settings(), NOW, 1).rows] == ["Daily briefing"]


def test_upcoming_is_the_same_from_the_disk_cache(home: Home) -> None:
    write_calendar(home, BODY)
    first = upcoming(home, Settings(), NOW, 5)
    assert (home.state / "cache" / "calendars.json").exists()
    second = upcoming(home, Settings(), NOW + timedelta(hours=1), 5)
    assert second.rows == first.rows and len(first.rows) == 6
    (home.state / "cache" / "calendars.json").write_text("{not json", encoding="utf-8")
    assert upcoming(home, Settings(), NOW, 5).rows == first.rows


def test_cli_next_json_and_table(home: Home) -> None:
    write_calendar(home, BODY)
    write_calendar(home, "BEGIN:VEVENT\nUID:x\nDTSTART:garbage\nEND:VEVENT", file="bad.ics")
    out = cli(home, "next", "--days", "3650", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["occurrences"][0]["title"] == "Daily briefing"
    assert doc["occurrences"][0]["series_key"] == keys.series_key("daily@example.com")
    assert "bad.ics:" in out.stderr
    table = cli(home, "next", "--days", "1")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["WHEN", "TITLE", "CALENDAR", "SERIES"]


PROBE = """
import sys
from runner.cli.main import main
sys.argv = ["runner", "--home", sys.argv[1], "next", "--days", "2"]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("icalendar", "recurring_ical_events", "anthropic") if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def test_warm_next_parses_nothing(home: Home) -> None:
    """The speed of `next` comes from the disk cache: warm, it never loads icalendar."""
    import subprocess
    import sys

    write_calendar(home, BODY)

    def probe() -> str:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(home.root)],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stderr

    assert "HEAVY=icalendar,recurring_ical_events\n" in probe()  # cold: parses
    assert "HEAVY=\n" in probe()  # warm: served from .runner/cache/
    (home.calendars / "agent" / "e.ics").write_text(
        (home.calendars / "agent" / "e.ics").read_text().replace("Holiday", "Vacation")
    )
    assert "HEAVY=icalendar,recurring_ical_events\n" in probe()  # a changed file: parsed


def test_cli_next_shows_local_time(home: Home) -> None:
    write_calendar(
        home,
        """
BEGIN:VEVENT
UID:berlin@example.com
DTSTART;TZID=Europe/Berlin:20260101T091500
SUMMARY:Berlin morning
RRULE:FREQ=DAILY
END:VEVENT
BEGIN:VEVENT
UID:allday-daily@example.com
DTSTART;VALUE=DATE:20260101
SUMMARY:Every day
RRULE:FREQ=DAILY
END:VEVENT
""",
    )
    (home.root / "runner.yaml").write_text('all_day_at: "07:45"\n', encoding="utf-8")
    out = cli(home, "next", "--days", "2", "--json", env={"TZ": "Europe/Berlin"})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["occurrences"]
    berlin = [r["time"][11:] for r in rows if r["title"] == "Berlin morning"]
    allday = [r["time"][11:] for r in rows if r["all_day"]]
    # Shown in the local zone (Berlin: +01:00 in winter, +02:00 in summer).
    assert berlin and {t[:8] for t in berlin} == {"09:15:00"}
    assert allday and {t[:8] for t in allday} == {"07:45:00"}
    assert all(t[8:] in ("+01:00", "+02:00") for t in berlin + allday)


def test_calendar_text_cannot_break_rows_or_reach_the_terminal(home: Home) -> None:
    start = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    hostile = "Daily\\nbriefing \x1b]0;owned\x07\x1b[2J"
    write_calendar(
        home,
        f"BEGIN:VEVENT\nUID:esc\nDTSTART:{start}\nSUMMARY:{hostile}\nEND:VEVENT\n",
    )
    result = cli(home, "next", "--days", "1")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    [_header, row] = result.stdout.splitlines()
    assert "Daily briefing \\x1b]0;owned\\x07\\x1b[2J" in row
    # The exact title stays in the JSON document.
    [item] = json.loads(cli(home, "next", "--days", "1", "--json").stdout)["occurrences"]
    assert item["title"] == "Daily\nbriefing \x1b]0;owned\x07\x1b[2J"
