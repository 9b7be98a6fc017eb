"""Log compression: older executions folded into one summary header (SPEC, "Logs").

After an execution (under the series lock) the live log is compressed when its
context passes `compression.max_tokens` or it holds more than
`compression.max_executions` executions; `runner compress KEY` does it on demand. The
newest `keep_recent` executions stay in full; the rest are summarised by the brain.

Cost is bounded whatever the size of the log (fold.py streams it): the older
executions go to the brain in chunks of about 8 x max_tokens bytes, each summary
folding the one before it in, and one pass folds at most PASS_CHUNKS chunks (or what
PASS_SECONDS allows) before it commits; a huge backlog takes several passes, each
one atomic (`runner compress` takes the series lock per pass).

The order of writes is what makes a pass safe. Each chunk's summary is made first:
a failed or empty one in the first chunk changes no file (the failure is noted under
.runner/ and the next run tries again). Then the chunk's executions are appended to
`logs/archive/<key>.jsonl` (whole lines, fsync). Only then is the live log replaced,
atomically, by [header, the executions not folded]. A crash before the replace
leaves the old live log and perhaps some executions in the archive too; readers
(logs.read_archive, logs.read_all) count each execution id once, and the next
compression archives them again harmlessly.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.brain.context import context_request
from runner.brain.protocol import Brain
from runner.clock import Clock, utc_iso
from runner.errors import RunnerError, UsageError
from runner.events import notify
from runner.fsutil import atomic_write
from runner.home import Home
from runner.keys import check_key
from runner.locks import holding_series
from runner.logs import fold
from runner.logs import store as logs
from runner.logs.summarise import fold_chunks, pause
from runner.logs.summarise import summary_record as summary_record  # tests use it
from runner.logs.tail import read_recent
from runner.settings import Settings

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
    passes: int = 0  # atomic rewrites of the live log

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
            "passes": self.passes,
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
    """`runner compress KEY`: compress now, taking the series lock for each pass.

    With `force`, compress whenever there are more than keep_recent executions;
    without it, only when the thresholds say so. Raises UsageError for an unknown key.
    """
    if not logs.log_path(home, key).exists():
        raise UsageError(f"no log named {key!r} (looked for {logs.log_path(home, key)})")
    if not force:
        with holding_series(home, key, on_wait=on_wait):
            result = maybe_compress(home, settings, key, brain, clock)
            if result is None:
                contents = logs.read_log(home, key)
                return CompressResult(
                    key, "nothing", "asked", None, len(contents.executions), covers=contents.covers
                )
            return result
    with holding_series(home, key, on_wait=on_wait):
        # The newest executions only: what a run's context is (and a huge log's
        # context is that too, see logs/tail.py).
        recent = read_recent(home, key, settings.compression.max_executions)
        tokens = measure(recent, brain, settings)
        result = fold_pass(home, settings, key, brain, clock, reason="asked", tokens=tokens)

    def locked_pass(number: int) -> CompressResult:
        # Between passes the lock is free: a run of this series need not wait for all.
        with holding_series(home, key, on_wait=on_wait):
            return fold_pass(home, settings, key, brain, clock, reason="asked", number=number)

    return _more_passes(result, settings, locked_pass)


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
    result = fold_pass(home, settings, key, brain, clock, reason=reason, tokens=tokens)
    return _more_passes(
        result,
        settings,
        lambda number: fold_pass(home, settings, key, brain, clock, reason=reason, number=number),
    )


def _more_passes(
    result: CompressResult, settings: Settings, one_pass: Callable[[int], CompressResult]
) -> CompressResult:
    """Further passes after the first, until keep_recent is reached."""
    while result.status == "compressed" and result.kept > settings.compression.keep_recent:
        step = one_pass(result.passes + 1)
        result = _merged(result, step)
        if step.status != "compressed":
            break  # a pass that folded nothing (or failed) ends the compression
    return result


def _merged(first: CompressResult, then: CompressResult) -> CompressResult:
    """Two passes as one result: the first's "before", the last's "after"."""
    if then.status == "nothing":
        return first
    return replace(
        then,
        context_tokens=first.context_tokens,
        executions=first.executions,
        summarised=first.summarised + then.summarised,
        kept=then.kept if then.status == "compressed" else first.kept,
        covers=then.covers if then.status == "compressed" else first.covers,
        summary_id=then.summary_id or first.summary_id,
        warning=then.warning or first.warning,
        passes=first.passes + then.passes,
    )


def fold_pass(
    home: Home,
    settings: Settings,
    key: str,
    brain: Brain,
    clock: Clock,
    *,
    reason: str,
    tokens: int | None = None,
    number: int = 1,
) -> CompressResult:
    """One bounded, atomic pass (the `number`th of a compression); the caller holds
    the lock. See the module docstring."""
    live = logs.log_path(home, key)
    # A torn tail would be dropped by the rewrite: set it aside first, as appends do.
    logs.set_aside_torn_tail(live)
    _remove_stale_temps(live)
    keep = settings.compression.keep_recent
    with open(live, "rb") as handle:
        where = fold.layout(handle, live, keep)
        covers = where.header.covers if where.header else 0
        base = CompressResult(key, "nothing", reason, tokens, where.newest, covers=covers)
        if where.keep is None:
            return replace(base, kept=where.newest)
        folded = fold_chunks(home, settings, key, brain, clock, handle, where, number)
        if folded.count == 0:
            return _failed(home, clock, base, folded.error or "nothing was summarised")
        header = folded.header
        kept = fold.rewrite(
            live,
            handle,
            header,
            folded.cut,
            where.end,
            before_replace=lambda: pause("compress-before-replace", number),
        )
    pause("compress-after-replace", number)
    result = replace(
        base,
        status="compressed",
        executions=folded.count + kept,
        summarised=folded.count,
        kept=kept,
        covers=header.covers,
        summary_id=header.id,
        warning=folded.warning,
        passes=1,
    )
    if folded.error is not None:  # a later chunk failed: what was folded stands
        return replace(_failed(home, clock, result, folded.error), status="failed")
    with contextlib.suppress(FileNotFoundError):
        failure_path(home, key).unlink()
    _tell(result)
    return result


def _tell(result: CompressResult) -> None:
    # After a run this is the only word of it; `runner compress` prints its own answer.
    message = (
        f"{result.key}: compressed {result.summarised} execution(s) into the summary "
        f"header (covers {result.covers}); kept {result.kept}"
    )
    if result.reason == "asked":
        log.debug(message)
    else:
        notify(message, "info")


def _remove_stale_temps(live: Path) -> None:
    """Temp files of a compression killed before its replace (only we write them)."""
    for stale in live.parent.glob(f".{live.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _failed(home: Home, clock: Clock, base: CompressResult, error: str) -> CompressResult:
    """Note the failure so the next run tries again."""
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
    if base.summarised:
        notify(f"{base.key}: compression stopped after {base.summarised} execution(s): {error}")
    else:
        notify(f"{base.key}: compression failed, the log is unchanged: {error}")
    return replace(base, status="failed", error=error)
