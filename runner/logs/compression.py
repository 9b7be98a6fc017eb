"""Log compression: older executions folded into one summary header (SPEC, "Logs").

After an execution (under the series lock) the live log is compressed when its
context passes `compression.max_tokens` or it holds more than
`compression.max_executions` executions; `runner compress KEY` does it on demand. The
newest `keep_recent` executions stay in full; the rest are summarised by the brain.

The order of writes is what makes it safe. First the summary is made: a failed or
empty one changes no file (the failure is noted under .runner/ and the next run tries
again). Then the summarised executions are appended to `logs/archive/<key>.jsonl`
(whole lines, fsync). Only then is the live log replaced, atomically, by [header,
recent executions]. A crash before the replace leaves the old live log and perhaps
some executions in the archive too; readers (logs.read_archive, logs.read_all) count
each execution id once, and the next compression archives them again harmlessly.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.brain.context import context_request, summary_request
from runner.brain.protocol import Brain, Usage
from runner.clock import Clock, utc_iso
from runner.errors import BrainError, RunnerError, UsageError
from runner.events import notify
from runner.fsutil import append_line, atomic_write
from runner.home import Home
from runner.keys import check_key
from runner.locks import holding_series
from runner.logs import store as logs
from runner.logs.records import ExecutionRecord, SummaryRecord, new_record_id
from runner.settings import Settings
from runner.testpause import pause_point

log = logging.getLogger("runner")


@dataclass(frozen=True)
class CompressResult:
    """What a compression did. `status`: compressed | failed | nothing."""

    key: str
    status: str
    reason: str  # tokens | executions | retry | asked
    context_tokens: int | None  # the live context before, where known
    executions: int  # executions in the live log before
    summarised: int = 0
    kept: int = 0
    covers: int = 0  # executions the header stands for afterwards
    summary_id: str | None = None
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "context_tokens": self.context_tokens,
            "executions": self.executions,
            "summarised": self.summarised,
            "kept": self.kept,
            "covers": self.covers,
            "summary_id": self.summary_id,
            "error": self.error,
            "warning": self.warning,
        }


def recorded_context_tokens(contents: logs.LogContents) -> int | None:
    """The context size recorded by the newest execution that has usage, if any.

    Failed executions record no usage; the newest one with usage stands for the
    context (the small failed turns after it are not counted until the next answer
    counts them). None where no usage exists yet: no executions, none with usage
    (an imported log), only records older than the summary header (their usage
    counted the turns that the header has since replaced), or a tool loop's record.
    """
    header_created = contents.summary.created if contents.summary else ""
    for record in reversed(contents.executions):
        older = bool(header_created) and record.started < header_created
        if older or (record.turns or 1) > 1:  # a tool loop's usage is spend, not context
            return None
        tokens = record.usage.context_tokens
        if tokens > 0:
            return tokens
    return None


def context_tokens(contents: logs.LogContents, brain: Brain, settings: Settings) -> int:
    """The size of the live log's context in tokens, for the compression threshold.

    Read from the newest recorded usage: input + cache + output tokens, i.e.
    the conversation as the brain saw it after that reply, which is what the next run
    sends again (SPEC: "read from the last response's usage"). The brain's
    `count_tokens` is asked only where no usage exists yet (see
    recorded_context_tokens), e.g. an imported log or one just compressed. Raises
    BrainError if that count fails.
    """
    recorded = recorded_context_tokens(contents)
    if recorded is not None:
        return recorded
    if not contents.executions and contents.summary is None:
        return 0
    return brain.count_tokens(context_request(contents, settings))


def failure_path(home: Home, key: str) -> Path:
    """Where a failed compression is noted (machine-local; deleting it is harmless).

    Not in the live log: SPEC allows only summary and execution records there, and the
    log must stay byte for byte as it was after a failed summary.
    """
    return home.state / "compression" / f"{check_key(key)}.json"


def last_failure(home: Home, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(failure_path(home, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def measure(contents: logs.LogContents, brain: Brain, settings: Settings) -> int | None:
    """context_tokens, or None (with a warning) when the brain cannot count."""
    try:
        return context_tokens(contents, brain, settings)
    except RunnerError as exc:
        notify(f"{contents.key}: cannot count the context: {exc}")
        return None


def maybe_compress(
    home: Home, settings: Settings, key: str, brain: Brain, clock: Clock
) -> CompressResult | None:
    """Compress the live log of `key` if it needs it; None if it does not.

    The caller holds the series lock (the executor calls this after an execution).
    """
    contents = logs.read_log(home, key)
    comp = settings.compression
    if len(contents.executions) <= comp.keep_recent:
        return None  # nothing could be summarised anyway
    tokens = measure(contents, brain, settings)
    if tokens is not None and tokens > comp.max_tokens:
        reason = "tokens"
    elif len(contents.executions) > comp.max_executions:
        reason = "executions"
    elif last_failure(home, key) is not None:
        reason = "retry"  # an earlier compression failed: try again
    else:
        return None
    return compress_locked(home, settings, key, brain, clock, reason=reason, tokens=tokens)


def compress(
    home: Home,
    settings: Settings,
    key: str,
    brain: Brain,
    clock: Clock,
    force: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> CompressResult:
    """`runner compress KEY`: take the series lock and compress now.

    With `force`, compress whenever there are more than keep_recent executions;
    without it, only when the thresholds say so. Raises UsageError for an unknown key.
    """
    if not logs.log_path(home, key).exists():
        raise UsageError(f"no log named {key!r} (looked for {logs.log_path(home, key)})")
    with holding_series(home, key, on_wait=on_wait):
        if force:
            tokens = measure(logs.read_log(home, key), brain, settings)
            return compress_locked(home, settings, key, brain, clock, reason="asked", tokens=tokens)
        result = maybe_compress(home, settings, key, brain, clock)
        if result is None:
            contents = logs.read_log(home, key)
            return CompressResult(
                key, "nothing", "asked", None, len(contents.executions), covers=contents.covers
            )
        return result


def compress_locked(
    home: Home,
    settings: Settings,
    key: str,
    brain: Brain,
    clock: Clock,
    *,
    reason: str,
    tokens: int | None = None,
) -> CompressResult:
    """Summarise all but the newest keep_recent executions; the caller holds the lock."""
    live = logs.log_path(home, key)
    # A torn tail would be dropped by the rewrite: set it aside first, as appends do.
    logs.set_aside_torn_tail(live)
    _remove_stale_temps(live)
    contents = logs.read_log(home, key)
    keep = settings.compression.keep_recent
    older, recent = contents.executions[:-keep], contents.executions[-keep:]
    base = CompressResult(
        key, "nothing", reason, tokens, len(contents.executions), covers=contents.covers
    )
    if not older:
        return replace(base, kept=len(recent))

    try:
        reply = brain.summarize(summary_request(settings, contents, older))
        text = reply.text.strip()
        if not text:
            raise BrainError("the brain returned an empty summary")
    except RunnerError as exc:
        return _failed(home, clock, base, exc.message)
    warning = None
    if reply.stop_reason == "max_tokens":
        warning = "the summary hit brain.max_tokens and may be cut short"
        notify(f"{key}: {warning}")

    header = summary_record(contents, older, text, clock)
    _archive_then_replace(home, key, older, [header, *recent])
    with contextlib.suppress(FileNotFoundError):
        failure_path(home, key).unlink()
    # After a run this is the only word of it; `runner compress` prints its own answer.
    message = (
        f"{key}: compressed {len(older)} execution(s) into the summary header "
        f"(covers {header.covers}); kept {len(recent)}"
    )
    if reason == "asked":
        log.debug(message)
    else:
        notify(message, "info")
    return replace(
        base,
        status="compressed",
        summarised=len(older),
        kept=len(recent),
        covers=header.covers,
        summary_id=header.id,
        warning=warning,
    )


def _archive_then_replace(
    home: Home,
    key: str,
    older: list[ExecutionRecord],
    rewritten: list[ExecutionRecord | SummaryRecord],
) -> None:
    """The two writes of a compression, in the order that makes a crash harmless."""
    # 1. The archive first: from here on every summarised execution is in two places.
    archive = logs.archive_path(home, key)
    logs.set_aside_torn_tail(archive)
    for number, record in enumerate(older):
        append_line(archive, logs.record_line(record))
        if number == 0:
            pause_point("compress-archive-partial")
    pause_point("compress-after-archive")

    # 2. Then the live log, atomically: the old one stands until the new one is durable.
    body = "".join(logs.record_line(r) + "\n" for r in rewritten)
    live = logs.log_path(home, key)
    atomic_write(live, body, before_replace=lambda: pause_point("compress-before-replace"))
    pause_point("compress-after-replace")


def summary_record(
    contents: logs.LogContents, older: list[ExecutionRecord], text: str, clock: Clock
) -> SummaryRecord:
    """The new header: covers and usage fold in the previous header's."""
    totals = logs.LogContents(contents.key, contents.summary, older).usage_totals()
    return SummaryRecord(
        id=new_record_id(),
        created=utc_iso(clock.now()),
        covers=contents.covers + len(older),
        usage=Usage.from_dict(totals),
        text=text,
    )


def _remove_stale_temps(live: Path) -> None:
    """Temp files of a compression killed before its replace (only we write them)."""
    for stale in live.parent.glob(f".{live.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _failed(home: Home, clock: Clock, base: CompressResult, error: str) -> CompressResult:
    """Nothing was written to the logs; note the failure so the next run tries again."""
    previous = last_failure(home, base.key) or {}
    note = {
        "key": base.key,
        "failed": utc_iso(clock.now()),
        "error": error,
        "failures": int(previous.get("failures") or 0) + 1,
    }
    try:
        atomic_write(failure_path(home, base.key), json.dumps(note, ensure_ascii=False) + "\n")
    except OSError as exc:  # .runner/ is a cache: failing to note it changes nothing
        log.debug("cannot note the failed compression: %s", exc)
    notify(f"{base.key}: compression failed, the log is unchanged: {error}")
    return replace(base, status="failed", error=error)
