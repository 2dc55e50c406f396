"""The retry policy both upstream calls share: what is retried, how long to wait, when to stop."""

from __future__ import annotations

import time
from email.utils import formatdate

import openai
import pytest

from chatbot.domain.errors import TurnError
from chatbot.llm.errors import from_exception
from chatbot.llm.http import httpx
from chatbot.llm.retry import RetryBudget, RetryPolicy

POLICY = RetryPolicy(max_retries=3, base_delay_s=0.25, max_delay_s=8.0, deadline_s=20.0)


def budget(remaining_s: float = 60.0) -> RetryBudget:
    return RetryBudget(deadline=time.monotonic() + remaining_s)


def status_error(status: int, **headers: str) -> TurnError:
    request = httpx.Request("POST", "http://upstream.invalid/v1/chat/completions")
    response = httpx.Response(status, headers=headers, request=request)
    return from_exception(openai.APIStatusError("failed", response=response, body=None))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert POLICY.delay_s(status_error(status), 0, budget()) is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_refusals_are_never_retried(status: int) -> None:
    assert POLICY.delay_s(status_error(status), 0, budget()) is None


@pytest.mark.parametrize(
    "code",
    ["upstream_stream_cut", "upstream_malformed", "upstream_timeout", "upstream_unreachable"],
)
def test_a_broken_reply_is_retried(code: str) -> None:
    assert POLICY.delay_s(TurnError(code, "broken"), 0, budget()) is not None


def test_our_own_bugs_are_not_retried() -> None:
    assert POLICY.delay_s(TurnError("internal_error", "bug"), 0, budget()) is None


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    error = status_error(503)
    for attempt in range(3):
        delays = [POLICY.delay_s(error, attempt, budget()) for _ in range(50)]
        low = 0.25 * 2**attempt
        assert all(d is not None and low <= d < 2 * low for d in delays)
        assert len(set(delays)) > 1  # jittered, so clients that failed together spread out
    capped = RetryPolicy(max_retries=10, base_delay_s=1.0, max_delay_s=8.0)
    assert capped.delay_s(error, 6, budget()) == 8.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert POLICY.delay_s(status_error(429, **{"retry-after": "1.5"}), 0, budget()) == 1.5
    assert POLICY.delay_s(status_error(503, **{"retry-after": "120"}), 0, budget()) == 8.0
    # OpenAI's millisecond header wins over the coarser one.
    error = status_error(429, **{"retry-after-ms": "250", "retry-after": "1"})
    assert POLICY.delay_s(error, 0, budget()) == 0.25


def test_retry_after_as_an_http_date() -> None:
    date = formatdate(time.time() + 3, usegmt=True)
    delay = POLICY.delay_s(status_error(429, **{"retry-after": date}), 0, budget())
    assert delay is not None and 0 < delay <= 3


def test_retries_stop_after_the_maximum() -> None:
    error = status_error(503)
    assert POLICY.delay_s(error, 2, budget()) is not None
    assert POLICY.delay_s(error, 3, budget()) is None


def test_a_wait_that_would_end_past_the_deadline_is_not_started() -> None:
    error = status_error(429, **{"retry-after": "2"})
    assert POLICY.delay_s(error, 0, budget(remaining_s=3)) == 2
    assert POLICY.delay_s(error, 0, budget(remaining_s=1)) is None
    assert POLICY.delay_s(error, 0, budget(remaining_s=-1)) is None
