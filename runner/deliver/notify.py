"""Who hears about a run, and telling them.

A task's `notify` names targets (default: the home's `notify_default`); its
`notify_on` (default [failed]) says for which statuses. The caller decides when a
failure is final (after its last retry): this module only sends. All targets of one
report are sent to at once, each in its own bounded time; a target that cannot be
reached is one warning, recorded in .runner/delivery.json, and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from runner.clock import Clock, utc_iso
from runner.deliver.message import Message, Report, compose
from runner.deliver.send import SendResult, send
from runner.deliver.state import record_result
from runner.deliver.targets import TargetError, resolve_url
from runner.delivery_settings import TargetSettings
from runner.errors import UsageError
from runner.home import Home
from runner.settings import Settings
from runner.tasks.delivery import Delivery

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Sent:
    target: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0


def wanted(settings: Settings, delivery: Delivery, status: str) -> tuple[list[str], list[str]]:
    """(target names to notify about `status`, names that are not defined)."""
    if status not in delivery.notify_on:
        return [], []
    names = delivery.notify if delivery.notify is not None else settings.notify_default
    return [n for n in names if n in settings.notify], [
        n for n in names if n not in settings.notify
    ]


def send_to(target: TargetSettings, message: Message, notify_type: str) -> SendResult:
    """One message to one target: its URL read now, the send bounded by its timeout."""
    try:
        url = resolve_url(target.source, f"notify.{target.name}")
    except TargetError as exc:
        return SendResult(False, exc.message)
    return send(url, message, notify_type, target.timeout, secret=target.source.url is None)


def deliver(
    home: Home,
    settings: Settings,
    report: Report,
    delivery: Delivery,
    clock: Clock,
    warn: Warn,
) -> list[Sent]:
    """Notify the task's targets about `report` if its `notify_on` asks for it."""
    names, unknown = wanted(settings, delivery, report.status)
    for name in unknown:
        warn(f"{report.task_id}: no notification target '{name}' in runner.yaml")
    if not names:
        return []
    message = compose(report)
    results: dict[str, SendResult] = {}

    def one(name: str) -> None:
        results[name] = send_to(settings.notify[name], message, report.notify_type)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each send bounds its own time
    sent: list[Sent] = []
    at = utc_iso(clock.now())
    for name in names:
        result = results[name]
        record_result(home, name, result.ok, result.error, at)
        if not result.ok:
            warn(f"{report.task_id}: notification to {name} not sent: {result.error}")
        sent.append(Sent(name, result.ok, result.error, result.seconds))
    return sent


def send_test(home: Home, settings: Settings, name: str, clock: Clock) -> Sent:
    """`runner notify TARGET`: a test message, so a user can check a target."""
    target = settings.notify.get(name)
    if target is None:
        defined = ", ".join(sorted(settings.notify)) or "none: add a notify: section"
        raise UsageError(f"no notification target '{name}' in runner.yaml (defined: {defined})")
    report = Report(
        task_id="(test)",
        title="runner",
        status="test",
        when=utc_iso(clock.now()),
        text=f"A test notification from the runner of {home.root.name}: it works.",
    )
    result = send_to(target, compose(report), "info")
    record_result(home, name, result.ok, result.error, utc_iso(clock.now()))
    return Sent(name, result.ok, result.error, result.seconds)
