"""Upstream failures, reduced to a stable code and a sentence a user can read.

Clients branch on ``code``; ``message`` is for people. ``retryable`` tells a client
whether sending the same prompt again may succeed.
"""

from __future__ import annotations

from dataclasses import dataclass

import openai

from chatbot.llm.http import httpx


@dataclass(eq=False)
class UpstreamError(Exception):
    code: str
    message: str
    retryable: bool = True
    status: int | None = None
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_exception(exc: BaseException) -> UpstreamError:
    """Translate whatever the SDK or the HTTP layer raised into an ``UpstreamError``."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return UpstreamError(
            "upstream_timeout", "The language model did not answer in time.", retryable=True
        )
    if isinstance(exc, openai.APIConnectionError | httpx.ConnectError):
        return UpstreamError(
            "upstream_unreachable", "The language model service could not be reached."
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after(exc.response)
        if status in (401, 403):
            return UpstreamError(
                "upstream_auth",
                "The language model service rejected our credentials.",
                retryable=False,
                status=status,
            )
        if status == 429:
            return UpstreamError(
                "upstream_rate_limited",
                "The language model service is rate limiting requests; try again shortly.",
                status=status,
                retry_after_s=retry_after,
            )
        if status >= 500:
            return UpstreamError(
                "upstream_unavailable",
                f"The language model service failed (HTTP {status}).",
                status=status,
                retry_after_s=retry_after,
            )
        return UpstreamError(
            "upstream_rejected",
            f"The language model service refused the request (HTTP {status}).",
            retryable=False,
            status=status,
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.StreamError):
        return UpstreamError(
            "upstream_stream_cut", "The language model's reply was cut off before it finished."
        )
    if isinstance(exc, httpx.HTTPError | openai.OpenAIError):
        return UpstreamError("upstream_error", f"The language model call failed: {exc}")
    return UpstreamError("internal_error", "The reply failed because of an internal error.")
