"""The Anthropic brain: the official `anthropic` SDK behind the Brain interface.

This is the only module that imports `anthropic`, and only when a call is made:
make_brain() loads this module lazily, and the SDK (over a second to import) is
imported on the first request, so `runner list` never pays for it and neither do
`runner run` on a task that does not load nor a `tick` with nothing due.

- Answers are always streamed (messages.stream), with or without a text sink: one
  code path, and `brain.timeout` then bounds every wait for the next bytes (connect,
  first token, each chunk) without cutting off a long answer that keeps arriving. A
  non-streamed call would have to deliver the whole answer within the read timeout.
- Retries within one attempt are the SDK's own (408/409/429/5xx/529, connection
  errors and timeouts, with backoff and retry-after), `brain.max_retries` of them.
  They are shown on stderr through the SDK's logging: a handler on its
  `anthropic._base_client` logger turns each "Retrying request" record into a
  notice (runner.events.notify) and counts the tries for the final message.
- SDK exceptions become BrainError with a message in words; 400/401/403/404 (and the
  other client errors that a retry cannot fix) are not retryable. No message ever
  contains the API key: the SDK reads it from ANTHROPIC_API_KEY, and any echo of it
  in an error text is redacted.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runner.brain.messages import build_params
from runner.brain.protocol import BrainReply, BrainRequest, SummaryRequest, TextSink
from runner.brain.tool_loop import run_loop, text_of, usage_of
from runner.errors import BrainError
from runner.events import notify
from runner.settings import BrainSettings

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message, MessageParam, TextBlockParam, ToolParam


SDK_LOGGER = "anthropic._base_client"  # logs "Retrying request to %s in %f seconds" at INFO
RETRY_PREFIX = "Retrying request"

# What the SDK raises on a body it cannot parse (garbage instead of JSON or SSE): a
# retryable failure of the attempt, never a traceback.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, AssertionError)

# 4xx statuses that the SDK retries; every other client error is final.
RETRIED_CLIENT_STATUSES = {408, 409, 429}


class RetryNotices(logging.Handler):
    """Shows the SDK's retries on stderr and counts them per call (per thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._calls = threading.local()

    def begin(self, max_retries: int) -> None:
        self._calls.retries = 0
        self._calls.max_retries = max_retries

    def retries(self) -> int:
        return int(getattr(self._calls, "retries", 0))

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.msg.startswith(RETRY_PREFIX):
            return  # only the retry lines; the SDK's other INFO/DEBUG lines stay quiet
        retries = self.retries() + 1
        self._calls.retries = retries
        delay = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        of = getattr(self._calls, "max_retries", None)
        wait = f" in {delay:.2g}s" if isinstance(delay, int | float) else ""
        notify(f"brain: retrying ({retries} of {of if of is not None else '?'}){wait}", "info")


_notices_lock = threading.Lock()
_notices: RetryNotices | None = None


def retry_notices() -> RetryNotices:
    """The one handler on the SDK's logger (installed once per process)."""
    global _notices
    with _notices_lock:
        if _notices is None:
            _notices = RetryNotices()
            sdk_log = logging.getLogger(SDK_LOGGER)
            sdk_log.addHandler(_notices)
            # The SDK's logger is silent below WARNING unless ANTHROPIC_LOG asked for
            # more (checked after the SDK's import, which reads it); lower it to INFO
            # only, so that the retry lines reach our handler.
            if sdk_log.getEffectiveLevel() > logging.INFO:
                sdk_log.setLevel(logging.INFO)
        return _notices


def tries_text(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def seconds(value: float) -> str:
    return f"{value:g}s"


def public_url(url: str) -> str:
    """The base URL without user info, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")


class AnthropicBrain:
    name = "anthropic"

    def __init__(self, settings: BrainSettings) -> None:
        self.settings = settings
        self._client: anthropic.Anthropic | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, made on first use: a broken credentials profile then fails
        the execution (a failed record) instead of the command before it starts."""
        import anthropic  # here, not at the top: see the module docstring

        with self._client_lock:
            if self._client is None:
                try:
                    # The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself.
                    self._client = anthropic.Anthropic(
                        timeout=self.settings.timeout, max_retries=self.settings.max_retries
                    )
                except anthropic.AnthropicError as exc:
                    raise BrainError(f"credentials: {exc}", retryable=False) from None
            return self._client

    @property
    def notices(self) -> RetryNotices:
        # Callers import anthropic first, so that ANTHROPIC_LOG has set its levels.
        return retry_notices()

    # -- the Brain interface ------------------------------------------------------

    def describe(self, model: str | None = None) -> str:
        return f"{self.name} ({model or self.settings.model})"

    def warm(self) -> None:
        # Import the SDK (seconds on a cold disk) and build the client now; the SDK
        # imports its resources lazily too, hence the touch of `messages`.
        _ = self.client.messages

    def complete(self, request: BrainRequest, on_text: TextSink | None = None) -> BrainReply:
        """The run's round trips (one without tools), each streamed (tool_loop.py)."""
        system, messages = build_params(request)
        self._check_credentials()
        return run_loop(
            request,
            messages,
            lambda m, t: self._send(request, system, m, t, on_text),
            system=bool(system),
        )

    def _send(
        self,
        request: BrainRequest,
        system: list[TextBlockParam],
        messages: list[MessageParam],
        tools: list[ToolParam],
        on_text: TextSink | None,
    ) -> Message:
        import anthropic
        import httpx2

        self.notices.begin(self.settings.max_retries)
        try:
            with self.client.messages.stream(
                model=request.model,
                max_tokens=request.max_tokens,
                system=system or anthropic.omit,
                messages=messages,
                tools=tools or anthropic.omit,
            ) as stream:
                message: Message = self._read_stream(stream, on_text)
                return message
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            raise self.error(exc, request.model) from None
        except UNREADABLE as exc:
            raise self.unreadable(exc) from None

    def _read_stream(self, stream: Any, on_text: TextSink | None) -> Any:
        """The final message, only if the stream really ended.

        A stream that closes without `message_stop` is a cut-off answer, not a
        completed one: its partial text must not be recorded as a success, so it is
        a retryable failure. A body with no `message_start` is not an answer at all.
        """
        started = stopped = False
        for event in stream:
            if event.type == "message_start":
                started = True
            elif event.type == "text" and on_text is not None and event.text:
                on_text(event.text)
            elif event.type == "message_stop":
                stopped = True
        if not started:
            raise BrainError(f"the API at {self.base_url} sent a reply that is not an answer")
        if not stopped:
            raise BrainError(
                f"the answer broke off before its end (the stream from {self.base_url} "
                "closed without message_stop)"
            )
        return stream.get_final_message()

    def unreadable(self, exc: Exception) -> BrainError:
        """A body the SDK cannot parse (not JSON, not UTF-8, not a Messages answer)."""
        return BrainError(
            f"the API at {self.base_url} sent a reply that cannot be read ({type(exc).__name__})"
        )

    def count_tokens(self, request: BrainRequest) -> int:
        import anthropic
        import httpx2

        system, messages = build_params(request)
        self._check_credentials()
        self.notices.begin(self.settings.max_retries)
        try:
            counted = self.client.messages.count_tokens(
                model=request.model, system=system or anthropic.omit, messages=messages
            )
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            raise self.error(exc, request.model) from None
        except UNREADABLE as exc:
            raise self.unreadable(exc) from None
        return int(counted.input_tokens)

    def summarize(self, request: SummaryRequest) -> BrainReply:
        import anthropic
        import httpx2

        self._check_credentials()
        self.notices.begin(self.settings.max_retries)
        try:
            message = self.client.messages.create(
                model=request.model,
                max_tokens=request.max_tokens,
                system=request.system or anthropic.omit,
                messages=[{"role": "user", "content": request.prompt}],
            )
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            raise self.error(exc, request.model) from None
        except UNREADABLE as exc:
            raise self.unreadable(exc) from None
        text = text_of(message)
        if not text.strip():
            raise BrainError(f"the summary came back empty (stop reason: {message.stop_reason})")
        return BrainReply(
            text=text,
            model=str(message.model or request.model),
            usage=usage_of(message),
            stop_reason=message.stop_reason,
        )

    # -- errors -------------------------------------------------------------------

    def _check_credentials(self) -> None:
        c = self.client
        if c.api_key is None and c.auth_token is None and c.credentials is None:
            raise BrainError("no API key: set ANTHROPIC_API_KEY", retryable=False)

    @property
    def base_url(self) -> str:
        return public_url(str(self._client.base_url)) if self._client else "(unknown)"

    def error(self, exc: BaseException, model: str) -> BrainError:
        """The SDK's exception as a BrainError in words, with no secret in it."""
        message, retryable = self.explain(exc, model)
        client = self._client
        for secret in (client.api_key, client.auth_token) if client else ():
            if secret:
                message = message.replace(secret, "[redacted]")
        return BrainError(message, retryable=retryable)

    def explain(self, exc: BaseException, model: str) -> tuple[str, bool]:
        import anthropic
        import httpx2

        tries = tries_text(self.notices.retries() + 1)
        timeout = seconds(self.settings.timeout)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            kind = str(exc.type or "")
            detail = (exc.api_message or "").strip()
            if status == 401 or kind == "authentication_error":
                return "authentication failed: check ANTHROPIC_API_KEY", False
            if status == 403 or kind == "permission_error":
                return f"permission denied for model {model}: {detail or 'forbidden'}", False
            if status == 404 or kind == "not_found_error":
                return f"model not found: {model}", False
            if status == 529 or kind == "overloaded_error":
                return f"overloaded after {tries}", True
            if status == 429 or kind == "rate_limit_error":
                return f"rate limited after {tries}", True
            if status == 408:
                return f"timed out after {timeout} ({tries})", True
            if status == 413 or kind == "request_too_large":
                return f"request too large: {detail or 'the context is too big'}", False
            if 400 <= status < 500 and status not in RETRIED_CLIENT_STATUSES:
                return f"bad request: {detail or f'HTTP {status}'}", False
            if status == 409:
                return f"conflict after {tries}: {detail or 'HTTP 409'}", True
            where = f"HTTP {status}" if status >= 400 else "an error event mid-answer"
            return f"API error ({where}) after {tries}: {detail or kind or 'no detail'}", True
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return f"timed out after {timeout} ({tries})", True
        if isinstance(exc, anthropic.APIConnectionError):
            return f"cannot reach the API at {self.base_url} ({tries})", True
        if isinstance(exc, httpx2.HTTPError):
            return f"the connection to {self.base_url} broke off mid-answer", True
        if isinstance(exc, anthropic.APIResponseValidationError):
            return f"the API at {self.base_url} sent a reply the SDK cannot read", True
        if isinstance(exc, anthropic.CredentialsError):
            return f"credentials: {exc}", False
        return f"the anthropic SDK failed: {type(exc).__name__}: {exc}", True
