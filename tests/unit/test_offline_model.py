"""The embedded offline model: it classifies by rules, answers in kind, and really streams."""

from __future__ import annotations

import asyncio
import re

import pytest

from chatbot.graph.prompts import classifier_messages, responder_messages
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.llm.offline import writer
from chatbot.llm.offline.transport import OfflineModelTransport, split_tokens
from chatbot.settings import Settings


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("Write a poem about the sea", "generate_poem"),
        ("a haiku on autumn, please", "generate_poem"),
        ("Write a Python function that reverses a string", "generate_code"),
        ("fix this javascript bug", "generate_code"),
        ("What is the capital of France?", "answer_question"),
        ("explain how TCP handshakes work", "answer_question"),
        ("hello there", "unknown"),
    ],
)
def test_rules_classify_prompts(prompt: str, label: str) -> None:
    assert writer.classify(prompt) == label


def test_poem_keeps_line_breaks_and_names_the_topic_and_its_author() -> None:
    text = writer.poem("Write a poem about lighthouses")
    lines = text.splitlines()
    assert len([line for line in lines if line.strip()]) >= 6
    assert "lighthouses" in text
    assert writer.SIGNATURE in text


def test_a_haiku_has_three_lines() -> None:
    text = writer.poem("write a haiku about autumn rain")
    verse = text.split("\n\n")[0].splitlines()
    assert len(verse) == 3
    assert any("autumn rain" in line for line in verse)


def test_code_is_one_fenced_block_in_the_requested_language() -> None:
    text = writer.code("write a javascript function for fibonacci")
    assert re.fullmatch(r"```javascript\n.*\n```", text, flags=re.S)
    assert "function fibonacci" in text
    assert writer.SIGNATURE in text


def test_unknown_code_task_is_an_honest_stub() -> None:
    text = writer.code("write a python script that syncs my calendars")
    assert text.startswith("```python\n") and text.endswith("```")
    assert "NotImplementedError" in text


def test_answer_is_honest_and_uses_earlier_turns() -> None:
    history = [
        {"role": "user", "content": "What is Burr?"},
        {"role": "assistant", "content": "…"},
        {"role": "user", "content": "And how do streaming actions work?"},
    ]
    text = writer.answer(history[-1]["content"], history)
    assert writer.SIGNATURE in text
    assert "What is Burr" in text  # the context reached the model


def test_replies_are_deterministic() -> None:
    assert writer.poem("a poem about rain") == writer.poem("a poem about rain")


def test_tokens_join_back_to_the_text() -> None:
    text = "One line\n\n  two   words\tand more "
    assert "".join(split_tokens(text)) == text
    assert "".join(split_tokens(text, 3)) == text


async def test_classification_goes_through_the_openai_sdk() -> None:
    model = ChatModel(
        build_openai_client(Settings(_env_file=None)), classifier_model="c", chat_model="m"
    )
    assert await model.complete(classifier_messages("write a sonnet")) == "generate_poem"


async def test_stream_is_lazy_first_delta_before_the_rest_exists() -> None:
    settings = Settings(_env_file=None, offline_pace_ms=20)
    client = build_openai_client(settings)
    transport = client._client._transport  # the OfflineModelTransport behind the SDK
    assert isinstance(transport, OfflineModelTransport)
    model = ChatModel(client, classifier_model="c", chat_model="m")
    messages = responder_messages(
        "generate_poem", [{"role": "user", "content": "a poem about rain", "type": "text"}], 10
    )
    stream = model.stream(messages)
    first = await anext(stream)
    produced_at_first = transport.stats.chunks_produced
    rest = [piece async for piece in stream]
    assert first and rest
    assert produced_at_first < transport.stats.chunks_produced
    assert produced_at_first <= 2


async def test_closing_a_stream_early_cancels_it_at_the_source() -> None:
    client = build_openai_client(Settings(_env_file=None, offline_pace_ms=5))
    transport = client._client._transport
    model = ChatModel(client, classifier_model="c", chat_model="m")
    messages = responder_messages(
        "answer_question", [{"role": "user", "content": "why?", "type": "text"}], 10
    )
    stream = model.stream(messages)
    await anext(stream)
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert transport.stats.streams_open == 0
    assert transport.stats.streams_cancelled == 1
