"""Upstream failures, whatever the SDK or the HTTP layer raised, as a ``TurnError``.

The codes depend on what went wrong, never on the transport: a timeout is
``upstream_timeout``, a failure before the reply's head (refused, reset, closed, not
HTTP) is ``upstream_unreachable``, and a failure once a stream has started is
``upstream_stream_cut``. The SDK's aiohttp transport labels every aiohttp connection
error a ``ConnectTimeout`` (a refused connection, a reset, a server that closed) and lets
some (a response head that is not HTTP) through as raw aiohttp errors, so the aiohttp
exception underneath decides whether a "timeout" really was one.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import aiohttp
import openai

from chatbot.domain.errors import TurnError
from chatbot.llm.http import httpx

UPSTREAM_ERRORS: tuple[type[Exception], ...] = (
    openai.OpenAIError,
    httpx.HTTPError,
    aiohttp.ClientError,
)
"""Everything an upstream call can raise that ``from_exception`` understands."""


def _retry_after(response: httpx.Response | None) -> float | None:
    """The wait the upstream asked for: ``retry-after-ms`` (OpenAI's), else ``Retry-After``."""
    if response is None:
        return None
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form the header allows: an HTTP date
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _aiohttp_cause(exc: BaseException) -> aiohttp.ClientError | None:
    """The aiohttp exception ``exc`` was raised from, if the aiohttp transport raised it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientError):
            return cause
        cause = cause.__cause__
    return None


def _timed_out(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ServerTimeoutError):  # raw: the transport did not map it
        return True
    if not isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return False
    cause = _aiohttp_cause(exc)
    return cause is None or isinstance(cause, asyncio.TimeoutError)


def _stream_cut() -> TurnError:
    return TurnError(
        "upstream_stream_cut", "The language model's reply was cut off before it finished."
    )


def from_exception(exc: BaseException) -> TurnError:
    """Translate whatever the SDK or the HTTP layer raised into an ``TurnError``."""
    if isinstance(exc, TurnError):
        return exc
    if _timed_out(exc):
        return TurnError(
            "upstream_timeout", "The language model did not answer in time.", retryable=True
        )
    # Before the reply's head: the SDK wraps it (``APIConnectionError``), or, for errors
    # the aiohttp transport does not map, the aiohttp error itself arrives.
    if isinstance(exc, openai.APIConnectionError | httpx.ConnectError | aiohttp.ClientError):
        return TurnError(
            "upstream_unreachable", "The language model service could not be reached."
        )
    if isinstance(exc, httpx.TimeoutException):  # mid-stream, a connection error, not a timeout
        return _stream_cut()
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after(exc.response)
        if status in (401, 403):
            return TurnError(
                "upstream_auth",
                "The language model service rejected our credentials.",
                retryable=False,
                status=status,
            )
        if status == 429:
            return TurnError(
                "upstream_rate_limited",
                "The language model service is rate limiting requests; try again shortly.",
                status=status,
                retry_after_s=retry_after,
            )
        if status == 408:
            return TurnError(
                "upstream_timeout",
                "The language model did not answer in time (HTTP 408).",
                status=status,
                retry_after_s=retry_after,
            )
        if status >= 500 or status == 409:
            return TurnError(
                "upstream_unavailable",
                f"The language model service failed (HTTP {status}).",
                status=status,
                retry_after_s=retry_after,
            )
        return TurnError(
            "upstream_rejected",
            f"The language model service refused the request (HTTP {status}).",
            retryable=False,
            status=status,
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.StreamError):
        return _stream_cut()
    if isinstance(exc, httpx.HTTPError | openai.OpenAIError):
        return TurnError("upstream_error", f"The language model call failed: {exc}")
    return TurnError("internal_error", "The reply failed because of an internal error.")
