"""What the tests share: an advanceable clock, one builder of calendar text, one
recording brain. Real parts everywhere else (see the README's testing notes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.brain.offline import OfflineBrain
from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink, Usage
from runner.errors import BrainError
from runner.home import Home

# -- time --------------------------------------------------------------------------------


class FakeClock:
    """A clock tests can set and advance; wall and monotonic move together unless
    `jump` (wall only, like a clock change or a suspend)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def jump(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


# -- calendars ---------------------------------------------------------------------------


def ics_time(moment: datetime | str) -> str:
    """`20261126T080000Z` for an aware datetime; text is taken as it is."""
    if isinstance(moment, str):
        return moment
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(
    uid: str,
    start: datetime | str,
    summary: str | None = None,
    *,
    description: str | None = None,
    rrule: str | None = None,
    tzid: str | None = None,
    duration: str = "PT15M",
    extra: str = "",
) -> str:
    """One VEVENT; `extra` adds property lines (e.g. RDATE:…, EXDATE:…)."""
    dtstart = f"DTSTART;TZID={tzid}:{ics_time(start)}" if tzid else f"DTSTART:{ics_time(start)}"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        dtstart,
        f"DURATION:{duration}",
        f"SUMMARY:{uid if summary is None else summary}",
    ]
    if description is not None:
        lines.append(f"DESCRIPTION:{description}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [line for line in extra.strip().splitlines() if line.strip()]
    lines.append("END:VEVENT")
    return "\n".join(lines)


def calendar_text(*components: str) -> str:
    """A VCALENDAR around `components` (LF or CRLF), with CRLF line ends as RFC 5545 says."""
    body = "\n".join(c.replace("\r\n", "\n").strip("\n") for c in components if c.strip())
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\n{body}\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def write_ics(home: Home, name: str, *components: str, calendar: str = "agent") -> Path:
    """calendars/<calendar>/<name> holding `components`; returns its path."""
    folder = home.calendars / calendar
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(calendar_text(*components), encoding="utf-8")
    return path


# -- brains ------------------------------------------------------------------------------


class RecordingBrain(OfflineBrain):
    """The offline brain, remembering what it was given (a real Brain, not a mock), and
    failing when told to.

    `error`: raised by the first `failures` answers (by every one when `failures` is
    None). `summary_error`: raised by every summary; `empty_summaries`: summaries
    come back blank.
    """

    def __init__(
        self,
        error: BrainError | None = None,
        failures: int | None = None,
        summary_error: BrainError | None = None,
        empty_summaries: bool = False,
    ) -> None:
        super().__init__()
        self.error = error
        self.failures = failures
        self.summary_error = summary_error
        self.empty_summaries = empty_summaries
        self.calls = 0
        self.requests: list[BrainRequest] = []
        self.summaries: list[SummaryRequest] = []
        self.counted: list[BrainRequest] = []

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        self.calls += 1
        self.requests.append(request)
        if self.error is not None and (self.failures is None or self.calls <= self.failures):
            raise self.error
        return super().complete(request, on_text)

    def count_tokens(self, request: BrainRequest) -> int:
        self.counted.append(request)
        return super().count_tokens(request)

    def summarize(self, request: SummaryRequest) -> BrainReply:
        self.summaries.append(request)
        if self.summary_error is not None:
            raise self.summary_error
        if self.empty_summaries:
            return BrainReply(text="  \n", model="offline", usage=Usage())
        return super().summarize(request)
