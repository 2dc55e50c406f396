"""Upstream failures, whatever the SDK or the HTTP layer raised, as a ``TurnError``."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import openai

from chatbot.errors import TurnError
from chatbot.llm.http import httpx


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


def from_exception(exc: BaseException) -> TurnError:
    """Translate whatever the SDK or the HTTP layer raised into an ``TurnError``."""
    if isinstance(exc, TurnError):
        return exc
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return TurnError(
            "upstream_timeout", "The language model did not answer in time.", retryable=True
        )
    if isinstance(exc, openai.APIConnectionError | httpx.ConnectError):
        return TurnError(
            "upstream_unreachable", "The language model service could not be reached."
        )
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
        return TurnError(
            "upstream_stream_cut", "The language model's reply was cut off before it finished."
        )
    if isinstance(exc, httpx.HTTPError | openai.OpenAIError):
        return TurnError("upstream_error", f"The language model call failed: {exc}")
    return TurnError("internal_error", "The reply failed because of an internal error.")
