"""When an upstream call that failed before anything reached the user is tried again.

One ``RetryPolicy`` serves both upstream calls of a turn, the classification and the reply
stream: the same failures are retried, with the same backoff, under the same cap. A turn's
retries share one ``RetryBudget`` whose deadline bounds how long a dead upstream can hold
the turn, whatever mix of failures it sends.

What is retried is a failure the next attempt may not repeat: the service unreachable or
resetting the connection, a timeout, 408, 409, 429, 5xx, and a reply that ended, broke or
sent a malformed event before its first content. What is never retried is a refusal that
would come back the same (400, 401, 403, 404, 422, any other 4xx) and our own bugs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Final

from chatbot.domain.errors import TurnError

# The codes (``chatbot.llm.errors.from_exception``) of failures worth another attempt.
RETRIED_CODES: Final = frozenset(
    {
        "upstream_unreachable",  # connection refused or reset before an answer
        "upstream_timeout",  # no answer, or a stall, within the read timeout; 408
        "upstream_rate_limited",  # 429
        "upstream_unavailable",  # 5xx, 409
        "upstream_stream_cut",  # the reply ended or broke before its end
        "upstream_malformed",  # an event or a body that is not the protocol's
        "upstream_error",  # an error event in the stream, or another transport failure
    }
)


@dataclass
class RetryBudget:
    """One turn's allowance: retries start only while they can begin before ``deadline``."""

    deadline: float  # on ``time.monotonic()``'s clock
    retries: int = 0  # made so far in the turn, by every call

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, honouring the upstream's ``Retry-After``."""

    max_retries: int = 2  # per call
    base_delay_s: float = 0.25  # the first backoff, before jitter
    max_delay_s: float = 8.0  # cap of the backoff and of a requested Retry-After
    deadline_s: float = 20.0  # a turn's retries must all start within this

    def budget(self) -> RetryBudget:
        return RetryBudget(deadline=time.monotonic() + self.deadline_s)

    @staticmethod
    def retries(error: TurnError) -> bool:
        """True for a failure another attempt may not repeat."""
        return error.code in RETRIED_CODES

    def delay_s(self, error: TurnError, attempt: int, budget: RetryBudget) -> float | None:
        """How long to wait before retry number ``attempt + 1``, or None to give up.

        A ``Retry-After`` longer than the cap is cut to the cap: one slow upstream must not
        hold a user for minutes, and the next attempt costs little. A wait that would end
        past the turn's deadline is not started at all.
        """
        if not self.retries(error) or attempt >= self.max_retries:
            return None
        if error.retry_after_s is not None:
            delay = error.retry_after_s
        else:
            delay = self.base_delay_s * (2**attempt) * (1 + random.random())
        delay = min(delay, self.max_delay_s)
        if delay > budget.remaining_s():
            return None
        return delay
