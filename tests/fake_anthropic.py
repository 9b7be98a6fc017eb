"""A small HTTP server that speaks the Anthropic Messages API, for tests and benches.

The real `anthropic` SDK is pointed at it (ANTHROPIC_BASE_URL or `base_url`), so the
tests exercise the SDK's own retries, timeouts, SSE parsing and error classes. It
listens on 127.0.0.1 only, on a port the OS picks.

- POST /v1/messages: JSON, or SSE when the body says `"stream": true` (the event
  sequence the API sends: message_start, content_block_start, content_block_delta ×N,
  content_block_stop, message_delta with stop_reason and usage, message_stop).
- Like the API, a request with more than four `cache_control` breakpoints is refused
  (400), so every test checks that the runner never sends more.
- POST /v1/messages/count_tokens: `{"input_tokens": N}`.
- A reply may carry `tool_calls`: after its text (if any) each is a `tool_use` block
  (streamed as `input_json_delta` pieces) and the stop reason is `tool_use`.

Every request is recorded (path, headers, JSON body). Replies come from a queue of
`Reply` objects; when the queue is empty a canned success is sent. Error replies
carry `retry-after-ms: 1`, which the SDK honours, so its backoff stays short.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

FAKE_KEY = "sk-ant-test-SECRET123"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


MAX_CACHE_MARKS = 4  # the API refuses a request with more cache_control breakpoints


def _cache_marks(value: Any) -> int:
    """The blocks carrying `cache_control` anywhere in a request body."""
    if isinstance(value, dict):
        own = 1 if "cache_control" in value else 0
        return own + sum(_cache_marks(v) for k, v in value.items() if k != "cache_control")
    if isinstance(value, list):
        return sum(_cache_marks(v) for v in value)
    return 0


@dataclass
class ToolCall:
    """One `tool_use` block of a scripted reply."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # default: toolu_fake_<n>, unique per server


@dataclass
class Reply:
    """One scripted answer. `status` ≠ 200 sends an API error body instead of text."""

    text: str = "Hello from the fake API."
    status: int = 200
    message: str | None = None  # the error message for an error reply
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(
        default_factory=lambda: {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
    )
    delay: float = 0.0  # seconds before the status line (a slow API)
    chunks: list[str] | None = None  # stream these deltas (default: text in 3 pieces)
    gate: threading.Event | None = None  # while streaming: hold the rest until it is set
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int | None = None  # for count_tokens replies
    error_mid_stream: str | None = None  # an SSE `error` event of this type after chunk 1
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Faults: `raw_body` is sent as is with HTTP 200 (garbage instead of JSON or SSE);
    # `cut_after` closes a stream after that many text deltas, without message_stop.
    raw_body: bytes | None = None
    raw_content_type: str = "application/json"
    cut_after: int | None = None

    def error_body(self) -> dict[str, Any]:
        kind = ERROR_TYPES.get(self.status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": self.message or kind.replace("_", " ")},
        }

    def deltas(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        third = max(1, len(self.text) // 3)
        parts = [self.text[i : i + third] for i in range(0, len(self.text), third)]
        return parts or [""]

    def finish_reason(self) -> str:
        return (
            "tool_use" if self.tool_calls and self.stop_reason == "end_turn" else self.stop_reason
        )


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeAnthropic:
    """The server; `queue()` scripts replies, `requests` holds what arrived."""

    def __init__(self, model: str = "claude-fake-model") -> None:
        self.model = model
        self.requests: list[Recorded] = []
        # (request fully read, answer fully written) per /v1/messages request, in
        # perf_counter seconds: the gaps between them are the client's own time.
        self.timings: list[tuple[float, float]] = []
        self._replies: deque[Reply] = deque()
        self._count_replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()  # set at shutdown: no handler waits forever
        self._served = 0
        self._calls = 0  # tool_use ids handed out
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- scripting ---------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self, key: str = FAKE_KEY) -> dict[str, str]:
        """Environment for a subprocess that should reach this server with `key`."""
        return {"ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": self.url}

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def fail(self, status: int, times: int = 1, message: str | None = None) -> None:
        self.queue(*(Reply(status=status, message=message) for _ in range(times)))

    def queue_count(self, input_tokens: int) -> None:
        with self._lock:
            self._count_replies.append(Reply(input_tokens=input_tokens))

    @property
    def message_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/messages"]

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -----------------------------------------------------------------

    def _next(self, path: str) -> Reply:
        with self._lock:
            self._served += 1
            if path.endswith("/count_tokens"):
                return self._count_replies.popleft() if self._count_replies else Reply()
            if self._replies:
                reply = self._replies.popleft()
                for call in reply.tool_calls:
                    if call.id is None:
                        self._calls += 1
                        call.id = f"toolu_fake_{self._calls}"
                return reply
            return Reply(text=f"Fake answer {self._served}.")

    def _reply_for(self, path: str, body: dict[str, Any]) -> Reply:
        """The reply to one request; a subclass may answer from what was asked."""
        return self._next(path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read `requests`, not a log

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                arrived = time.perf_counter()
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with fake._lock:
                    fake.requests.append(Recorded(path, dict(self.headers.items()), body))
                if path not in ("/v1/messages", "/v1/messages/count_tokens"):
                    self._json(404, Reply(status=404, message=f"no route {path}").error_body())
                    return
                marks = _cache_marks(body)
                if path == "/v1/messages" and marks > MAX_CACHE_MARKS:
                    message = (
                        f"A maximum of 4 blocks with cache_control may be provided. Found {marks}."
                    )
                    self._json(400, Reply(status=400, message=message).error_body())
                    return
                reply = fake._reply_for(path, body)
                if reply.delay and fake._released.wait(reply.delay):
                    return  # shutting down
                try:
                    if reply.raw_body is not None:
                        self._raw(reply)
                    elif reply.status != 200:
                        headers = {"retry-after-ms": "1", **reply.headers}
                        self._json(reply.status, reply.error_body(), headers)
                    elif path.endswith("/count_tokens"):
                        tokens = reply.input_tokens
                        if tokens is None:
                            tokens = max(1, len(raw) // 4)
                        self._json(200, {"input_tokens": tokens}, reply.headers)
                    elif body.get("stream"):
                        self._stream(reply, body)
                    else:
                        self._json(200, fake._message(reply, body), reply.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                if path == "/v1/messages":
                    with fake._lock:
                        fake.timings.append((arrived, time.perf_counter()))

            def _json(
                self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_fake_{fake._served}")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _raw(self, reply: Reply) -> None:
                assert reply.raw_body is not None
                self.send_response(200)
                self.send_header("content-type", reply.raw_content_type)
                self.send_header("content-length", str(len(reply.raw_body)))
                self.send_header("request-id", f"req_fake_{fake._served}")
                self.end_headers()
                self.wfile.write(reply.raw_body)

            def _event(self, name: str, data: dict[str, Any]) -> None:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
                # HTTP/1.0 semantics: no length, the body ends when the connection closes.
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("request-id", f"req_fake_{fake._served}")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                start = fake._message(reply, body)
                start["content"] = []
                start["stop_reason"] = None
                start["usage"] = {**reply.usage, "output_tokens": 1}
                self._event("message_start", {"type": "message_start", "message": start})
                index = 0
                if reply.text or not reply.tool_calls:
                    if not self._stream_text(reply):
                        return
                    index = 1
                for call in reply.tool_calls:
                    self._stream_tool_call(index, call)
                    index += 1
                self._event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": reply.finish_reason(), "stop_sequence": None},
                        "usage": {"output_tokens": reply.usage.get("output_tokens", 0)},
                    },
                )
                self._event("message_stop", {"type": "message_stop"})

            def _stream_text(self, reply: Reply) -> bool:
                """The text block at index 0; False when the reply breaks off with an error."""
                self._event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                self._event("ping", {"type": "ping"})
                for n, piece in enumerate(reply.deltas()):
                    self._event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                    if n == 0 and reply.gate is not None:
                        # Hold the rest until the test opens the gate (or shutdown).
                        while not reply.gate.wait(0.05) and not fake._released.is_set():
                            pass
                    if reply.cut_after is not None and n + 1 >= reply.cut_after:
                        return False  # the connection closes: no message_stop
                    if n == 0 and reply.error_mid_stream:
                        error = {"type": reply.error_mid_stream, "message": "mid-stream failure"}
                        self._event("error", {"type": "error", "error": error})
                        return False
                self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
                return True

            def _stream_tool_call(self, index: int, call: ToolCall) -> None:
                block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name}
                block["input"] = {}
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
                raw = json.dumps(call.input)
                half = len(raw) // 2
                for piece in (raw[:half], raw[half:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    self._event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                self._event("content_block_stop", {"type": "content_block_stop", "index": index})

        return Handler

    def _message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake_{self._served}",
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model") or self.model),
            "content": [
                *([{"type": "text", "text": reply.text}] if reply.text else []),
                *(
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}
                    for c in reply.tool_calls
                ),
            ],
            "stop_reason": reply.finish_reason(),
            "stop_sequence": None,
            "usage": dict(reply.usage),
        }


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started fake Messages API on 127.0.0.1; stopped after the test."""
    with FakeAnthropic() as server:
        yield server
