"""The upstream SSE parser: chunk boundaries, coalescing, the end of a stream, and faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from chatbot.domain.errors import TurnError
from chatbot.llm.sse import iter_text_deltas
from chatbot.llm.watchdog import StreamWatchdog


def event(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    payload = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(*parts: bytes) -> list[str]:
    return [text async for text in iter_text_deltas(chunks(*parts))]


async def test_one_event_per_chunk_gives_one_delta_each() -> None:
    assert await collect(event("Hel"), event("lo"), event(finish="stop"), DONE) == ["Hel", "lo"]


async def test_events_split_across_chunks_are_reassembled() -> None:
    wire = event("héllo") + event(" wörld") + DONE
    pieces = [wire[i : i + 7] for i in range(0, len(wire), 7)]
    assert "".join(await collect(*pieces)) == "héllo wörld"


async def test_events_arriving_together_are_coalesced_into_one_delta() -> None:
    assert await collect(event("a") + event("b") + event("c"), event("d"), DONE) == ["abc", "d"]


async def test_role_only_usage_only_and_comment_lines_yield_nothing() -> None:
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n'
    assert await collect(b": keep-alive\n\n", role, event("x"), usage, DONE) == ["x"]


async def test_crlf_line_endings_are_accepted() -> None:
    wire = (event("x") + event(finish="stop") + DONE).replace(b"\n", b"\r\n")
    assert await collect(wire) == ["x"]


async def test_finish_reason_then_eof_without_done_is_a_clean_end() -> None:
    assert await collect(event("x"), event(finish="stop")) == ["x"]


async def test_stream_cut_before_the_end_raises() -> None:
    with pytest.raises(TurnError) as raised:
        await collect(event("x"), event("y"))
    assert raised.value.code == "upstream_stream_cut"


async def test_malformed_event_raises() -> None:
    with pytest.raises(TurnError) as raised:
        await collect(event("x"), b"data: {not json\n\n")
    assert raised.value.code == "upstream_malformed"


async def test_wrong_shape_raises() -> None:
    with pytest.raises(TurnError) as raised:
        await collect(b'data: {"choices": ["nope"]}\n\n')
    assert raised.value.code == "upstream_malformed"


async def test_error_event_raises_with_its_message() -> None:
    with pytest.raises(TurnError) as raised:
        await collect(event("x"), b'data: {"error": {"message": "overloaded"}}\n\n')
    assert "overloaded" in raised.value.message


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (b"data: {not json\n\n", "upstream_malformed"),
        (b'data: {"error": "x"}\n\n', "upstream_error"),
    ],
)
async def test_text_read_together_with_a_fault_is_passed_on_before_it(
    fault: bytes, code: str
) -> None:
    """A transport that reads more at once (aiohttp) must not lose what preceded a fault."""
    seen: list[str] = []
    with pytest.raises(TurnError) as raised:
        async for text in iter_text_deltas(chunks(event("x"), event("y") + event("z") + fault)):
            seen.append(text)
    assert raised.value.code == code
    assert seen == ["x", "yz"]


async def test_bytes_arriving_after_the_deadline_end_the_reply_as_a_timeout() -> None:
    """A trickle inside the read timeout is still stopped by the reply's deadline."""

    async def trickle() -> AsyncIterator[bytes]:
        yield event("on")
        yield event(" time")
        await asyncio.sleep(0.5)  # the 0.2 s deadline passes while the reply trickles
        yield event(" too late")
        yield event(finish="stop") + DONE

    received: list[str] = []
    with pytest.raises(TurnError) as caught:
        with StreamWatchdog(read_timeout_s=60.0, deadline_in_s=0.2) as watch:
            async for text in iter_text_deltas(trickle(), watch):
                received.append(text)
    assert caught.value.code == "upstream_timeout"
    assert received == ["on", " time"]


async def test_a_reply_within_its_deadline_is_whole() -> None:
    parts = chunks(event("in"), event(" time"), event(finish="stop"), DONE)
    with StreamWatchdog(read_timeout_s=60.0, deadline_in_s=60.0) as watch:
        assert [t async for t in iter_text_deltas(parts, watch)] == ["in", " time"]
