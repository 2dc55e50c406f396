"""Usage and finish reasons from the upstream, through the SDK, the offline model and our parser."""

from __future__ import annotations

import orjson

from chatbot.domain.events import Usage
from chatbot.graph.prompts import classifier_messages, responder_messages
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.llm.sse import iter_text_deltas
from chatbot.llm.usage import StreamReport, parse_usage
from chatbot.settings import Settings

POEM = responder_messages(
    "generate_poem", [{"role": "user", "content": "a poem about rain", "type": "text"}], 10
)


def offline_model() -> ChatModel:
    client = build_openai_client(Settings(_env_file=None, offline_pace_ms=0))
    return ChatModel(client, classifier_model="c", chat_model="m")


def words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


async def test_the_offline_classifier_reports_its_words_as_tokens() -> None:
    spent: list[Usage] = []
    messages = classifier_messages("write a sonnet")
    assert await offline_model().complete(messages, on_usage=spent.append) == "generate_poem"
    assert spent == [Usage(words(messages), 1)]


async def test_a_reply_stream_reports_usage_and_finish_reason() -> None:
    report = StreamReport()
    text = "".join([piece async for piece in offline_model().stream(POEM, report=report)])
    assert report.usage == Usage(words(POEM), len(text.split()))
    assert report.finish_reason == "stop"


async def test_max_tokens_cuts_the_reply_and_says_length() -> None:
    report = StreamReport()
    stream = offline_model().stream(POEM, options={"max_tokens": 4}, report=report)
    text = "".join([piece async for piece in stream])
    assert len(text.split()) == 4
    assert report.finish_reason == "length"
    assert report.usage is not None and report.usage.completion_tokens == 4


async def test_a_stop_sequence_ends_the_reply_before_it() -> None:
    full = "".join([piece async for piece in offline_model().stream(POEM)])
    stop = full.split()[3]
    report = StreamReport()
    stream = offline_model().stream(POEM, options={"stop": [stop]}, report=report)
    cut = "".join([piece async for piece in stream])
    assert cut == full[: full.index(stop)]
    assert report.finish_reason == "stop"


def sse(*events: dict | str) -> list[bytes]:
    return [
        b"data: " + (e.encode() if isinstance(e, str) else orjson.dumps(e)) + b"\n\n"
        for e in events
    ]


async def stream_of(chunks: list[bytes]):
    for chunk in chunks:
        yield chunk


def choice(content: str | None, finish: str | None = None, **extra) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


async def test_the_parser_reads_openais_usage_chunk_after_the_finish() -> None:
    report = StreamReport()
    chunks = sse(
        choice("Hi", usage=None),
        choice(None, "length", usage=None),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}},
        "[DONE]",
    )
    assert [t async for t in iter_text_deltas(stream_of(chunks), report=report)] == ["Hi"]
    assert (report.usage, report.finish_reason) == (Usage(5, 1), "length")


async def test_the_parser_reads_usage_on_the_finishing_chunk_too() -> None:
    report = StreamReport()
    usage = {"prompt_tokens": 2, "completion_tokens": 3}
    chunks = sse(choice("Hi"), choice(None, "stop", usage=usage), "[DONE]")
    assert [t async for t in iter_text_deltas(stream_of(chunks), report=report)] == ["Hi"]
    assert report.usage == Usage(2, 3)


def test_odd_usage_objects_are_no_usage() -> None:
    assert parse_usage(None) is None
    assert parse_usage({"prompt_tokens": "5", "completion_tokens": 1}) is None
    assert parse_usage({"prompt_tokens": 5}) is None
    report = StreamReport()
    report.finished("tool_calls")
    assert report.finish_reason == "stop"
