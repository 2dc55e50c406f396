"""The two upstream calls the graph makes: a one-shot classification and a streamed reply.

Both go through the shared client's low-level ``request`` (what its ``post`` calls, the
SDK's way to call an endpoint with a raw body) rather than ``chat.completions.create``:
``create`` walks every message through the SDK's typed parameter transform, which
profiling showed to cost more than everything else in a turn once a conversation has some
history, and parses each reply into pydantic models we would only take apart again. The
body goes as ``content``, already encoded (orjson, once per call, reused by its retries),
and the URL absolute, which spares the SDK its JSON encoder and a URL merge per request;
each call's request options are a copy of ones built once (``post`` builds them anew,
with pydantic, for every request). Auth, timeouts and error mapping are the SDK's,
unchanged.

Failures the user never saw are retried here, below the turn, so every protocol gets the
same behaviour: the classification whenever it fails, a reply stream as long as it has
not yielded its first text. Once text was yielded a failure ends the reply: another
attempt would repeat or contradict what the user already read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn

import openai
import orjson
from openai._models import FinalRequestOptions

from chatbot.domain.errors import TurnError
from chatbot.domain.events import Usage
from chatbot.llm.errors import UPSTREAM_ERRORS, from_exception
from chatbot.llm.http import httpx
from chatbot.llm.retry import RetryBudget, RetryPolicy
from chatbot.llm.sse import iter_text_deltas
from chatbot.llm.usage import StreamReport, parse_usage
from chatbot.llm.watchdog import StreamWatchdog

if TYPE_CHECKING:
    from chatbot.metrics import Metrics
    from chatbot.settings import Settings

logger = logging.getLogger(__name__)

_PATH = "/chat/completions"
_WITH_USAGE = {"include_usage": True}
# The SDK would draw a uuid4 per request for its idempotency header; a counter is as
# unique for our purposes (requests are never retried by the SDK: max_retries=0). Our
# retries pass the options of the attempt they repeat, as the SDK's own would.
_request_ids = itertools.count(1)
_KEY_PREFIX = f"chatbot-{os.getpid()}-"
_UPSTREAM_FAILURES = (*UPSTREAM_ERRORS, TurnError)

# The retry budget of the turn running in this task. Every turn the model answers makes
# its classification first and its reply second, in the task that runs the turn (Burr runs
# a step in its caller's task): the classification opens the budget, the reply takes what
# is left of it. A reply with no budget waiting (run on its own) opens its own.
_turn_budget: ContextVar[RetryBudget | None] = ContextVar("upstream_retry_budget", default=None)


def _options(base: FinalRequestOptions, body: bytes) -> FinalRequestOptions:
    """One request's options: ``base`` (built once) with this body and a fresh key."""
    key = f"{_KEY_PREFIX}{next(_request_ids)}"
    return base.model_copy(update={"content": body, "idempotency_key": key})


def _first_message(body: bytes, on_usage: Callable[[Usage], None] | None = None) -> str:
    """``choices[0].message.content`` of a chat completion, or a malformed-reply error.
    ``on_usage`` hears the tokens it reports even when its content is unusable: they were
    spent, and the retry spends more."""
    try:
        completion = orjson.loads(body)
        if on_usage is not None and (usage := parse_usage(completion.get("usage"))):
            on_usage(usage)
        choices = completion.get("choices") or []
        return (choices[0]["message"].get("content") or "") if choices else ""
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, IndexError):
        raise TurnError(
            "upstream_malformed", "The language model sent a malformed reply (classification)."
        ) from None


class ChatModel:
    """Upstream access for the actions; one instance per process, around the shared client."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        classifier_model: str,
        chat_model: str,
        retry: RetryPolicy | None = None,
        reply_deadline_s: float = 600.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        # A reply stream is read with no client read timeout: its watchdog (one timer per
        # stream, ``chatbot.llm.watchdog``) keeps both that timeout and the reply's deadline.
        timeout = client.timeout
        if isinstance(timeout, httpx.Timeout):
            self._read_timeout_s = timeout.read
            self._stream_timeout = httpx.Timeout(
                connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool
            )
        else:  # one number (or None) for every phase
            self._read_timeout_s = timeout
            self._stream_timeout = httpx.Timeout(timeout, read=None)
        # Absolute: the SDK sends it as it is instead of joining it to its base URL.
        url = str(client.base_url).rstrip("/") + _PATH
        self._classify_options = FinalRequestOptions.construct(method="post", url=url)
        self._stream_options = FinalRequestOptions.construct(
            method="post", url=url, timeout=self._stream_timeout
        )
        self.classifier_model = classifier_model
        self.chat_model = chat_model
        self.retry = retry or RetryPolicy()
        self.reply_deadline_s = reply_deadline_s
        self.metrics = metrics

    @classmethod
    def from_settings(
        cls, client: openai.AsyncOpenAI, settings: Settings, metrics: Metrics | None = None
    ) -> ChatModel:
        return cls(
            client,
            classifier_model=settings.classifier_model,
            chat_model=settings.chat_model,
            retry=RetryPolicy(
                max_retries=settings.upstream_max_retries,
                base_delay_s=settings.upstream_retry_base_s,
                max_delay_s=settings.upstream_retry_max_backoff_s,
                deadline_s=settings.upstream_retry_deadline_s,
            ),
            reply_deadline_s=settings.upstream_reply_deadline_s,
            metrics=metrics,
        )

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> str:
        """One non-streaming completion with the classifier model, retried on failure.

        Retrying is always safe here: nothing has reached the client yet. This call opens
        the turn's retry budget, which the reply stream then shares. ``on_usage`` hears
        the tokens of every attempt that reported some (a retried one's too).
        """
        budget = self.retry.budget()
        _turn_budget.set(budget)
        body = orjson.dumps({"model": self.classifier_model, "messages": messages, "stream": False})
        options = _options(self._classify_options, body)
        attempt = 0
        while True:
            try:
                response = await self.client.request(httpx.Response, options)
                return _first_message(response.content, on_usage)
            except _UPSTREAM_FAILURES as exc:
                error = from_exception(exc)
                if not await self._before_retry("classifier", error, attempt, budget):
                    _raise(error, exc)
            attempt += 1

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        options: Mapping[str, Any] | None = None,
        report: StreamReport | None = None,
    ) -> AsyncIterator[str]:
        """Stream the chat model's reply as text deltas, retried until its first text.

        A failure before the first delta (an HTTP error, a reset, a reply that ends, breaks,
        stalls or sends a malformed event before any content) starts the reply over; the
        caller only sees a later first delta. After it, the failure is raised.

        ``options`` are sampling parameters a client asked for (temperature, max_tokens,
        stop...), sent as they are. The upstream is always asked for usage; ``report``
        receives it (the sum over every attempt, a retried one's too) and the finish
        reason when the stream ends.
        """
        budget = _turn_budget.get()
        if budget is None:
            budget = self.retry.budget()
        else:
            _turn_budget.set(None)  # spent by this reply; the next turn opens its own
        body = orjson.dumps(
            {
                **(options or {}),
                "model": self.chat_model,
                "messages": messages,
                "stream": True,
                "stream_options": _WITH_USAGE,
            }
        )
        request_options = _options(self._stream_options, body)
        attempt = 0
        earlier: Usage | None = None  # the tokens of the attempts retried
        while True:
            forwarded = False
            try:
                with StreamWatchdog(self._read_timeout_s, self.reply_deadline_s) as watch:
                    response = await self.client.request(
                        httpx.Response, request_options, stream=True
                    )
                    try:
                        deltas = iter_text_deltas(response.aiter_bytes(), watch, report)
                        async for text in deltas:
                            forwarded = True
                            yield text
                    finally:
                        await response.aclose()
            except _UPSTREAM_FAILURES as exc:
                error = from_exception(exc)
                if forwarded or not await self._before_retry("reply", error, attempt, budget):
                    _raise(error, exc)
                attempt += 1
                if report is not None and report.usage is not None:  # spent by this attempt
                    earlier = report.usage if earlier is None else earlier + report.usage
                    report.usage = None
                continue
            if report is not None and earlier is not None:
                report.usage = earlier if report.usage is None else earlier + report.usage
            if budget.retries and self.metrics is not None:
                self.metrics.turns_saved_by_retry.inc()
            return

    async def _before_retry(
        self, call: str, error: TurnError, attempt: int, budget: RetryBudget
    ) -> bool:
        """Wait as the policy says and return True, or return False when it says give up."""
        delay = self.retry.delay_s(error, attempt, budget)
        if delay is None:
            return False
        budget.retries += 1
        if self.metrics is not None:
            self.metrics.upstream_retries.labels(call, error.code).inc()
        logger.warning(
            "%s call failed (%s), retry %d in %.2fs", call, error.code, attempt + 1, delay
        )
        await asyncio.sleep(delay)
        return True


def _raise(error: TurnError, cause: BaseException) -> NoReturn:
    """Raise ``error`` for the turn, chained to what the SDK or HTTP layer raised."""
    if error is cause:
        raise error
    raise error from cause
