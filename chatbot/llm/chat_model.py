"""The two upstream calls the graph makes: a one-shot classification and a streamed reply.

Both go through the shared client's low-level ``post`` (the SDK's documented way to call
an endpoint with a raw body) rather than ``chat.completions.create``: ``create`` walks
every message through the SDK's typed parameter transform, which profiling showed to cost
more than everything else in a turn once a conversation has some history, and parses
each reply into pydantic models we would only take apart again. Auth, base URL,
timeouts and error mapping are the SDK's, unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from collections.abc import AsyncIterator

import openai
import orjson

from chatbot.errors import TurnError
from chatbot.llm.errors import UPSTREAM_ERRORS, from_exception
from chatbot.llm.http import httpx
from chatbot.llm.sse import iter_text_deltas

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 8.0
_PATH = "/chat/completions"
# The SDK would draw a uuid4 per request for its idempotency header; a counter is as
# unique for our purposes (requests are never retried by the SDK: max_retries=0).
_request_ids = itertools.count(1)
_KEY_PREFIX = f"chatbot-{os.getpid()}-"


def _options() -> dict[str, str]:
    return {"idempotency_key": f"{_KEY_PREFIX}{next(_request_ids)}"}


def _first_message(body: bytes) -> str:
    """``choices[0].message.content`` of a chat completion, or a malformed-reply error."""
    try:
        completion = orjson.loads(body)
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
        classifier_max_retries: int = 2,
    ) -> None:
        self.client = client
        self.classifier_model = classifier_model
        self.chat_model = chat_model
        self.classifier_max_retries = classifier_max_retries

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """One non-streaming completion with the classifier model, retried with bounded backoff.

        Retrying is safe here because nothing has reached the client yet; ``Retry-After``
        is honoured up to a cap so one slow upstream cannot hold a request for minutes.
        """
        attempt = 0
        while True:
            try:
                response = await self.client.post(
                    _PATH,
                    body={"model": self.classifier_model, "messages": messages, "stream": False},
                    cast_to=httpx.Response,
                    options=_options(),
                )
                return _first_message(response.content)
            except UPSTREAM_ERRORS as exc:
                error = from_exception(exc)
                if not error.retryable or attempt >= self.classifier_max_retries:
                    raise error from exc
                delay = error.retry_after_s
                if delay is None:
                    delay = 0.25 * (2**attempt) * (1 + random.random())
                delay = min(delay, _MAX_BACKOFF_S)
                logger.warning(
                    "classifier call failed (%s), retry %d in %.2fs",
                    error.code,
                    attempt + 1,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """Stream the chat model's reply as text deltas; never retried once started."""
        try:
            response = await self.client.post(
                _PATH,
                body={"model": self.chat_model, "messages": messages, "stream": True},
                cast_to=httpx.Response,
                stream=True,
                options=_options(),
            )
        except UPSTREAM_ERRORS as exc:
            raise from_exception(exc) from exc
        try:
            async for text in iter_text_deltas(response.aiter_bytes()):
                yield text
        except UPSTREAM_ERRORS as exc:
            raise from_exception(exc) from exc
        finally:
            await response.aclose()
