"""The text of a notification: the same for every service, short enough for a phone.

Title: the task's title and the status. Body: the status and when, the first lines
of the answer (or the error), the task id and the output file. Calendar text is
untrusted: control characters are dropped and everything is cut to size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runner.clock import local_zone

MAX_TITLE = 80
MAX_LINES = 6  # of the answer or the error
MAX_EXCERPT = 300  # characters of the answer or the error
MAX_BODY = 600

_CONTROLS: dict[int, str | None] = dict.fromkeys(
    (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))
)
_CONTROLS[0x09] = " "


@dataclass(frozen=True)
class Report:
    """What happened to one task, as far as the user should hear about it."""

    task_id: str
    title: str
    status: str  # completed | failed | skipped
    when: str | None = None  # the occurrence (RFC 3339 or a date), or the run's finish
    text: str | None = None  # the answer, or the error
    output: str | None = None  # the file written, relative to the home
    attempts: int = 0

    @property
    def notify_type(self) -> str:
        """Apprise's notify type: its services show it as an icon or a colour."""
        return {"completed": "success", "failed": "failure", "skipped": "warning"}.get(
            self.status, "info"
        )


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def when_text(when: str | None) -> str | None:
    if not when:
        return None
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    if len(when) <= 10:
        return moment.strftime("%a %Y-%m-%d")
    if moment.tzinfo is not None:
        moment = moment.astimezone(local_zone())
    return moment.strftime("%a %Y-%m-%d %H:%M")


def excerpt(text: str) -> str:
    lines = [line.rstrip() for line in _clean(text).strip().split("\n")]
    kept = lines[:MAX_LINES]
    cut = _cut("\n".join(kept), MAX_EXCERPT)
    if len(lines) > MAX_LINES and not cut.endswith("…"):
        cut += "\n…"
    return cut


def compose(report: Report) -> Message:
    title = _cut(" ".join(_clean(report.title).split()) or report.task_id, MAX_TITLE - 12)
    head = report.status
    when = when_text(report.when)
    if when:
        head += f" · {when}"
    if report.status == "failed" and report.attempts > 1:
        head += f" · after {report.attempts} attempts"
    lines = [head]
    if report.text and report.text.strip():
        lines.append(excerpt(report.text))
    lines.append(f"task: {report.task_id}")
    if report.output:
        lines.append(f"output: {_clean(report.output)}")
    return Message(f"{title}: {report.status}", _cut("\n".join(lines), MAX_BODY))
