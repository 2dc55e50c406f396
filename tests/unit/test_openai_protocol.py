"""OpenAI's chunk and completion shapes from turn events: pure functions, no I/O."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chatbot.domain.errors import SHUTTING_DOWN, TurnError
from chatbot.domain.events import (
    StepStarted,
    Timings,
    TurnCompleted,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
    Usage,
)
from server.openai_schemas import ChatCompletionChunkOut
from server.protocols.openai import (
    DONE,
    ChunkFrames,
    CompletionIds,
    chunk_frames,
    completion,
    event_frames,
)

REPLY = {"role": "assistant", "content": "Hi there.", "type": "text"}
TIMINGS = Timings(first_delta_ms=1.0, total_ms=2.0)


def frames(include_usage: bool = False) -> ChunkFrames:
    ids = CompletionIds("chatcmpl-1", 1700000000, "burr-chatbot", "oai-abc")
    return ChunkFrames(ids, include_usage=include_usage)


def events_of(data: bytes) -> list[dict | str]:
    """Split SSE bytes into events; ``[DONE]`` stays a string, the rest is JSON."""
    assert data.endswith(b"\n\n")
    out: list[dict | str] = []
    for block in data.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block
        payload = block[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_a_delta_chunk_is_a_valid_chunk_with_only_the_content() -> None:
    (data,) = frames().delta('say "hi"\n').split(b"\n\n")[:-1]
    assert data.startswith(b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk",')
    (chunk,) = events_of(data + b"\n\n")
    assert chunk == {
        "id": "chatcmpl-1",
        "created": 1700000000,
        "model": "burr-chatbot",
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "delta": {"content": 'say "hi"\n'},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    }
    ChatCompletionChunkOut.model_validate(chunk)


def test_with_include_usage_every_chunk_but_the_last_has_null_usage() -> None:
    writer = frames(include_usage=True)
    (delta,) = events_of(writer.delta("x"))
    (role,) = events_of(writer.role("generate_poem"))
    assert delta["usage"] is None and role["usage"] is None
    without = frames()
    assert "usage" not in events_of(without.delta("x"))[0]
    assert "usage" not in events_of(without.role("generate_poem"))[0]


def test_the_role_chunk_opens_with_the_mode_and_conversation() -> None:
    (chunk,) = events_of(event_frames(StepStarted("generate_poem"), frames()))
    assert chunk["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
         "finish_reason": None}
    ]
    assert chunk["chatbot"] == {"conversation_id": "oai-abc", "mode": "generate_poem"}
    ChatCompletionChunkOut.model_validate(chunk)


def test_completion_ends_with_finish_reason_then_done() -> None:
    outcome = TurnCompleted(REPLY, "answer_question", TIMINGS, Usage(3, 4), finish_reason="length")
    finish, done = events_of(event_frames(outcome, frames()))
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    ]
    assert finish["chatbot"]["mode"] == "answer_question"
    assert done == "[DONE]"


def test_include_usage_adds_a_choiceless_usage_chunk_before_done() -> None:
    outcome = TurnCompleted(REPLY, "answer_question", TIMINGS, Usage(3, 4))
    finish, usage, done = events_of(event_frames(outcome, frames(include_usage=True)))
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["usage"] is None
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert done == "[DONE]"
    ChatCompletionChunkOut.model_validate(usage)


def test_an_upstream_that_reports_no_usage_counts_zero() -> None:
    outcome = TurnCompleted(REPLY, "prompt_for_more", TIMINGS, None)
    _, usage, _ = events_of(event_frames(outcome, frames(include_usage=True)))
    assert usage["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_a_failure_is_one_error_event_in_openai_shape_and_no_done() -> None:
    error = TurnError("upstream_stream_cut", "The reply was cut off.")
    data = event_frames(TurnFailed(error, "answer_question"), frames())
    assert events_of(data) == [
        {
            "error": {
                "message": "The reply was cut off.",
                "type": "server_error",
                "param": None,
                "code": "upstream_stream_cut",
            }
        }
    ]
    assert DONE not in data


def test_a_stopped_turn_says_why_and_a_client_that_left_hears_nothing() -> None:
    stopped = event_frames(TurnInterrupted(None, "generate_poem", SHUTTING_DOWN), frames())
    assert events_of(stopped)[0]["error"]["code"] == "server_shutting_down"
    assert event_frames(TurnInterrupted(None, "generate_poem"), frames()) == b""


def test_history_is_not_sent_openai_clients_hold_it() -> None:
    assert event_frames(TurnStarted([REPLY], "hi"), frames()) == b""


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_whole_stream_in_order(include_usage: bool) -> None:
    async def events():
        yield "Hello"
        yield ", world"
        yield TurnCompleted(REPLY, "answer_question", TIMINGS, Usage(1, 2))

    async def collect() -> bytes:
        writer = frames(include_usage)
        parts = [p async for p in chunk_frames(events(), writer, already=[StepStarted("x")])]
        return b"".join(parts)

    stream = events_of(asyncio.run(collect()))
    assert stream[-1] == "[DONE]"
    chunks = [ChatCompletionChunkOut.model_validate(c) for c in stream[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (chunks[-1].choices == []) is include_usage


def test_non_streaming_completion_has_the_reply_usage_and_mode() -> None:
    outcome = TurnCompleted(
        {"role": "assistant", "content": "```py\nx\n```", "type": "code"},
        "generate_code",
        TIMINGS,
        Usage(10, 5),
    )
    body = completion(outcome, CompletionIds("chatcmpl-2", 1, "burr-chatbot", "c")).model_dump()
    assert body["object"] == "chat.completion"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "```py\nx\n```", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert body["chatbot"] == {"conversation_id": "c", "mode": "generate_code"}
