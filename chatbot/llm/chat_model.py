"""The two upstream calls the graph makes: a one-shot classification and a streamed reply."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import openai

from chatbot.llm.errors import from_exception
from chatbot.llm.http import httpx
from chatbot.llm.sse import iter_text_deltas

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 8.0


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
                completion = await self.client.chat.completions.create(
                    model=self.classifier_model, messages=messages, stream=False
                )
                choices = completion.choices or []
                return (choices[0].message.content or "") if choices else ""
            except (openai.OpenAIError, httpx.HTTPError) as exc:
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
            async with self.client.chat.completions.with_streaming_response.create(
                model=self.chat_model, messages=messages, stream=True
            ) as response:
                async for text in iter_text_deltas(response.http_response.aiter_bytes()):
                    yield text
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise from_exception(exc) from exc
