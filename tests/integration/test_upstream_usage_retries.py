"""Tokens across retries: a retried upstream call counts every attempt's tokens, not only
the last one's (through the SDK, against the fake upstream on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from chatbot.domain.events import Usage
from chatbot.graph.prompts import classifier_messages
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.llm.retry import RetryPolicy
from chatbot.llm.usage import StreamReport
from chatbot.settings import Settings
from tests.support.fake_openai import STREAM_PROMPT_TOKENS, FakeOpenAI, Script

TOKENS = ["A", " short", " poem"]


@pytest.fixture
async def model(fake_openai: FakeOpenAI) -> AsyncIterator[ChatModel]:
    settings = Settings(
        _env_file=None, openai_api_key="test-key", openai_base_url=fake_openai.base_url
    )
    client = build_openai_client(settings)
    quick = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.05)
    try:
        yield ChatModel(client, classifier_model="c", chat_model="m", retry=quick)
    finally:
        await client.close()


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion}


async def test_a_retried_classification_counts_both_attempts(
    fake_openai: FakeOpenAI, model: ChatModel
) -> None:
    """The first answer reports its tokens but has no usable content (malformed): the
    tokens were spent all the same, and the retry spends more."""
    unusable = orjson.dumps({"choices": "not a list", "usage": usage(7, 2)})
    fake_openai.on_classify(Script(raw_body=unusable), Script(answer="generate_poem"))
    spent: list[Usage] = []
    answer = await model.complete(classifier_messages("a poem"), on_usage=spent.append)
    assert answer == "generate_poem"
    assert len(fake_openai.classifier_requests()) == 2
    assert spent == [Usage(7, 2), Usage(1, 1)]  # the fake's good answer reports 1 and 1


async def test_a_retried_reply_stream_reports_the_tokens_of_every_attempt(
    fake_openai: FakeOpenAI, model: ChatModel
) -> None:
    """The first stream reports its usage, then breaks before any text (retried unseen);
    the report sums both attempts."""
    broken = [
        b"data: " + orjson.dumps({"choices": [], "usage": usage(5, 3)}) + b"\n\n",
        b"data: {this is not json\n\n",
    ]
    fake_openai.on_stream(Script(raw_events=broken), Script(tokens=TOKENS))
    report = StreamReport()
    messages = [{"role": "user", "content": "a poem"}]
    text = "".join([piece async for piece in model.stream(messages, report=report)])
    assert text == "".join(TOKENS)
    assert len(fake_openai.streamed_requests()) == 2
    assert report.usage == Usage(5 + STREAM_PROMPT_TOKENS, 3 + len(TOKENS))
    assert report.finish_reason == "stop"


async def test_a_stream_that_is_not_retried_reports_its_own_tokens(
    fake_openai: FakeOpenAI, model: ChatModel
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS))
    report = StreamReport()
    messages = [{"role": "user", "content": "a poem"}]
    assert [piece async for piece in model.stream(messages, report=report)]
    assert report.usage == Usage(STREAM_PROMPT_TOKENS, len(TOKENS))
