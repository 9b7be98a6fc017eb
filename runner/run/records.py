"""The execution record: what one finished run appends to its series log."""

from __future__ import annotations

from typing import Any

from runner.brain.protocol import BrainReply, Usage
from runner.logs import store as logs
from runner.tasks import files as tasks

INTERRUPTED = "interrupted"


def execution_record(
    task: tasks.Task,
    *,
    started: str,
    finished: str,
    status: str,
    model: str | None,
    reply: BrainReply | None = None,
    error: str | None = None,
    retryable: bool = True,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "execution",
        "id": logs.new_record_id(),
        "task": task.id,
        "session_id": task.session_id,
        "occurrence": task.occurrence,
        "started": started,
        "finished": finished,
        "status": status,
        "model": reply.model if reply else model,
        "instructions": task.instructions,
        "response": reply.text if reply else None,
        "stop_reason": reply.stop_reason if reply else None,
        "usage": (reply.usage if reply else Usage()).to_dict(),
        "error": error,
    }
    if status == "failed" and not retryable:
        record["retryable"] = False  # auth / bad request: tick and watch do not retry
    return record
