"""Every way an upstream connection can fail maps to the code the README promises.

The production client (``build_openai_client``, the SDK's aiohttp transport) talks to a
scripted server on loopback that misbehaves at the socket level: refuses, closes or
resets before answering, answers something that is not HTTP, stalls, or cuts a stream.
The codes are those the httpx transport gave before: a timeout is ``upstream_timeout``,
a failure before the reply's head is ``upstream_unreachable``, one once a stream has
started is ``upstream_stream_cut``.

Not covered: a malformed chunk-size line mid-stream. aiohttp's C parser (3.14) drops that
error instead of handing it to the response body, so the read waits until the client
goes away; httpx called it a cut stream.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from chatbot.domain.errors import TurnError
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.llm.retry import RetryPolicy
from chatbot.settings import Settings

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
TIMEOUT_S = 0.3

Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _token(text: bytes) -> bytes:
    return _chunk(b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def close_at_once(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def reset_at_once(writer: asyncio.StreamWriter) -> None:
    _reset(writer)


async def answer_late(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(TIMEOUT_S * 4)
    writer.close()


async def answer_not_http(writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    writer.close()


def two_tokens_then(end: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> Behaviour:
    async def behaviour(writer: asyncio.StreamWriter) -> None:
        writer.write(STREAM_HEAD + _token(b"one") + _token(b" two"))
        await writer.drain()
        await asyncio.sleep(0.05)  # the client has read the tokens before the fault
        await end(writer)

    return behaviour


async def _fin(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _rst(writer: asyncio.StreamWriter) -> None:
    _reset(writer)


async def _stall(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(TIMEOUT_S * 4)
    writer.close()


async def completion_cut_short(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
        b'{"choices": ['
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


async def _serve(behaviour: Behaviour | None) -> tuple[asyncio.Server | None, int]:
    """A loopback server running ``behaviour`` once the request is read; None: no listener."""
    if behaviour is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return None, probe.getsockname()[1]  # free, and nothing listens on it

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            await behaviour(writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _failure(behaviour: Behaviour | None, call: str) -> tuple[TurnError, list[str]]:
    """The ``TurnError`` one classifier or streamed call ends with, and the deltas before it."""
    server, port = await _serve(behaviour)
    settings = Settings(
        _env_file=None,
        openai_api_key="test-key",
        openai_base_url=f"http://127.0.0.1:{port}/v1",
        upstream_connect_timeout_s=TIMEOUT_S,
        upstream_read_timeout_s=TIMEOUT_S,
    )
    client = build_openai_client(settings)
    no_retries = RetryPolicy(max_retries=0)  # the first failure is the answer
    model = ChatModel(client, classifier_model="c", chat_model="m", retry=no_retries)
    deltas: list[str] = []
    try:
        with pytest.raises(TurnError) as caught:
            if call == "complete":
                await model.complete([{"role": "user", "content": "hi"}])
            else:
                async for text in model.stream([{"role": "user", "content": "hi"}]):
                    deltas.append(text)
    finally:
        await client.close()
        if server is not None:
            server.close()
    return caught.value, deltas


BEFORE_THE_REPLY = [
    pytest.param(None, "upstream_unreachable", id="refused"),
    pytest.param(close_at_once, "upstream_unreachable", id="closed"),
    pytest.param(reset_at_once, "upstream_unreachable", id="reset"),
    pytest.param(answer_not_http, "upstream_unreachable", id="not-http"),
    pytest.param(answer_late, "upstream_timeout", id="read-timeout"),
]


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize(("behaviour", "code"), BEFORE_THE_REPLY)
async def test_failures_before_the_reply(behaviour: Behaviour | None, code: str, call: str) -> None:
    error, deltas = await _failure(behaviour, call)
    assert error.code == code, error
    assert error.retryable
    assert deltas == []


@pytest.mark.parametrize(
    ("end", "code"),
    [
        pytest.param(_fin, "upstream_stream_cut", id="closed"),
        pytest.param(_rst, "upstream_stream_cut", id="reset"),
        pytest.param(_stall, "upstream_timeout", id="stalled"),
    ],
)
async def test_failures_mid_stream(
    end: Callable[[asyncio.StreamWriter], Awaitable[None]], code: str
) -> None:
    error, deltas = await _failure(two_tokens_then(end), "stream")
    assert error.code == code, error
    assert "".join(deltas) == "one two"


async def test_classifier_reply_cut_short() -> None:
    error, _ = await _failure(completion_cut_short, "complete")
    assert error.code == "upstream_unreachable", error


async def test_the_production_client_streams_through_aiohttp() -> None:
    """The transport under these tests is aiohttp's, and a good stream passes whole."""

    async def good(writer: asyncio.StreamWriter) -> None:
        writer.write(STREAM_HEAD + _token(b"one") + _token(b" two"))
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    server, port = await _serve(good)
    assert server is not None
    settings = Settings(
        _env_file=None, openai_api_key="k", openai_base_url=f"http://127.0.0.1:{port}/v1"
    )
    client = build_openai_client(settings)
    try:
        model = ChatModel(client, classifier_model="c", chat_model="m")
        texts: AsyncIterator[str] = model.stream([{"role": "user", "content": "hi"}])
        assert "".join([t async for t in texts]) == "one two"
        transport = client._client._transport  # what the SDK was handed
        assert "aiohttp" in type(transport).__module__
    finally:
        await client.close()
        server.close()
