"""A fake OpenAI-compatible server on loopback, speaking the real chat-completions wire format.

It runs in a thread of the test process (a real uvicorn server on a real socket), records
every request and when it arrived, and can be scripted per call: the classifier's answer,
the streamed tokens and their pace, a gate that holds the stream until the test says go,
and faults: HTTP errors with ``Retry-After``, a connection reset before the first byte,
slow headers, a stream cut, a malformed chunk or a stall before or after some content,
a slow trickle. ``fault_scripts`` names each fault kind; ``inject_faults`` makes the fake
pick them at random (seeded) for requests nothing was scripted for.

A gate holds for as long as the test wants: it opens when the test sets it (or when the
fake stops), never by itself, so a loaded machine cannot let a held reply run on behind
the test's back. ``streams_held`` says how many streams wait at a gate right now.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Script:
    """What the fake does for one request. Unset fields fall back to the fake's defaults."""

    status: int = 200
    error_message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    answer: str | None = None  # non-streaming content (the classifier's answer)
    tokens: list[str] | None = None  # streamed content pieces
    token_delay: float | None = None
    headers_delay: float = 0.0  # wait before answering at all (read timeouts)
    reset: bool = False  # reset the connection (TCP RST) before sending a byte
    gate_after: int | None = None  # hold the stream after this many tokens…
    gate: threading.Event | None = None  # …until this is set (by the test, or by ``stop``)
    # After the role chunk and this many tokens (0: before any content):
    cut_after: int | None = None  # drop the connection
    malformed_after: int | None = None  # send a chunk that is not JSON
    error_event_after: int | None = None  # send an ``{"error": …}`` event
    stall_after: int | None = None  # go silent for ``stall_s``
    stall_s: float = 30.0
    # Write the HTTP response by hand, then a chunk-size line that is not hex, and hold
    # the connection for ``stall_s``: a broken chunked framing, not a broken event.
    bad_chunk_size_after: int | None = None
    # Sent as they are, in place of the reply: the JSON body (classifier) or the events.
    raw_body: bytes | None = None
    raw_events: list[bytes] | None = None


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = 0.0  # arrival, on ``time.monotonic()``'s clock
    fault: str | None = None  # the kind ``inject_faults`` picked for it, if any

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class _Cut(Exception):
    """Raised inside the body so the server drops the connection mid-stream."""


class FakeOpenAI:
    def __init__(self) -> None:
        self.classifier_answer = "answer_question"
        self.tokens = ["Hello", " from", " the", " fake", " upstream", "."]
        self.token_delay = 0.005
        self.requests: list[Recorded] = []
        self.streams_completed = 0
        self.streams_cancelled = 0
        self.active_streams = 0
        self.streams_held = 0  # streams waiting at their gate right now
        self._gates: list[threading.Event] = []  # every gate a stream waited at
        self._classify_scripts: deque[Script] = deque()
        self._stream_scripts: deque[Script] = deque()
        self._injector: _FaultInjector | None = None
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- scripting ----------------------------------------------------------------------
    def on_classify(self, *scripts: Script) -> None:
        with self._lock:
            self._classify_scripts.extend(scripts)

    def on_stream(self, *scripts: Script) -> None:
        with self._lock:
            self._stream_scripts.extend(scripts)

    def inject_faults(
        self,
        probability: float,
        *,
        seed: int,
        stream_faults: dict[str, Script],
        classify_faults: dict[str, Script],
    ) -> None:
        """Answer an unscripted request with a fault picked at random (seeded).

        With ``probability`` a request gets one of the kinds for its call, each as likely;
        ``Recorded.fault`` names it. Scripted requests (``on_stream``, ``on_classify``)
        are answered as scripted.
        """
        self._injector = _FaultInjector(
            random.Random(seed), probability, stream_faults, classify_faults
        )

    def drop_scripts(self) -> None:
        """Forget the scripts no request has used yet."""
        with self._lock:
            self._classify_scripts.clear()
            self._stream_scripts.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def streamed_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.stream]

    def classifier_requests(self) -> list[Recorded]:
        return [r for r in self.requests if not r.stream]

    # --- HTTP ---------------------------------------------------------------------------
    async def _completions(self, request: Request) -> Response:
        arrived = time.monotonic()
        body = await request.json()
        with self._lock:
            record = Recorded(request.url.path, dict(request.headers), body, arrived)
            self.requests.append(record)
            streamed = bool(body.get("stream"))
            queue = self._stream_scripts if streamed else self._classify_scripts
            if queue:
                script = queue.popleft()
            elif self._injector is not None:
                record.fault, script = self._injector.pick(streamed)
            else:
                script = Script()
        if script.reset:
            self._reset(request)
            return Response(status_code=500)  # never sent: the connection is gone
        if script.headers_delay:
            await asyncio.sleep(script.headers_delay)
        if script.status != 200:
            error = {"error": {"message": script.error_message, "type": "server_error"}}
            return JSONResponse(error, status_code=script.status, headers=script.headers)
        model = body.get("model", "fake")
        if not body.get("stream"):
            if script.raw_body is not None:
                return Response(script.raw_body, media_type="application/json")
            answer = script.answer if script.answer is not None else self.classifier_answer
            return JSONResponse(_completion(model, answer), headers=script.headers)
        if script.raw_events is not None:
            return StreamingResponse(iter(script.raw_events), media_type="text/event-stream")
        if script.bad_chunk_size_after is not None:
            await self._bad_chunk_size(request, model, script)
            return Response(status_code=500)  # never sent: the response was written by hand
        options = body.get("stream_options") or {}
        return StreamingResponse(
            self._stream(model, script, include_usage=options.get("include_usage") is True),
            media_type="text/event-stream",
            headers=script.headers,
        )

    async def _stream(self, model: str, script: Script, include_usage: bool = False):
        tokens = script.tokens if script.tokens is not None else self.tokens
        delay = script.token_delay if script.token_delay is not None else self.token_delay
        with self._lock:
            self.active_streams += 1
        completed = False
        try:
            yield _chunk(model, {"role": "assistant", "content": ""}, None)
            for index, token in enumerate(tokens):
                if script.stall_after is not None and index == script.stall_after:
                    await asyncio.sleep(script.stall_s)
                if script.cut_after is not None and index == script.cut_after:
                    raise _Cut()
                if script.malformed_after is not None and index == script.malformed_after:
                    yield b"data: {this is not json\n\n"
                if script.error_event_after is not None and index == script.error_event_after:
                    yield b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
                if script.gate is not None and script.gate_after == index:
                    await self._hold(script.gate)
                if index and delay:
                    await asyncio.sleep(delay)
                yield _chunk(model, {"content": token}, None)
            yield _chunk(model, {}, "stop")
            if include_usage:  # as OpenAI: a last chunk with no choices, before [DONE]
                yield _usage_chunk(model, STREAM_PROMPT_TOKENS, len(tokens))
            yield b"data: [DONE]\n\n"
            completed = True
        except _Cut:
            raise
        except BaseException:  # the client went away: the request was cancelled
            with self._lock:
                self.streams_cancelled += 1
            raise
        finally:
            with self._lock:
                self.active_streams -= 1
                if completed:
                    self.streams_completed += 1

    async def _hold(self, gate: threading.Event) -> None:
        """Wait until the test opens ``gate``; no timeout, so the hold is the test's alone.

        A test that never opens it meets pytest's timeout, not a silent release that would
        let the reply run on. The event is polled rather than waited on in a worker thread:
        a cancelled stream (its client left) then stops waiting at once instead of parking
        one of the loop's few executor threads until the gate opens.
        """
        with self._lock:
            self._gates.append(gate)
            self.streams_held += 1
        try:
            # A threading.Event, set from the test's thread: there is no loop to wake.
            while not gate.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        finally:
            with self._lock:
                self.streams_held -= 1

    async def _bad_chunk_size(self, request: Request, model: str, script: Script) -> None:
        """The response head and the first events, framed by hand, then a chunk-size line
        that is not hex; the connection is held open for ``stall_s``, then closed."""
        transport = self._transport_of(request)
        events = [_chunk(model, {"role": "assistant", "content": ""}, None)]
        tokens = script.tokens if script.tokens is not None else self.tokens
        events += [
            _chunk(model, {"content": t}, None) for t in tokens[: script.bad_chunk_size_after]
        ]
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        transport.write(head + b"transfer-encoding: chunked\r\n\r\n")
        for event in events:
            transport.write(b"%x\r\n%s\r\n" % (len(event), event))
        # In a network read of its own: aiohttp's parser then waits on it for good (in the
        # same read as the events before it, it raises at once).
        await asyncio.sleep(0.1)
        transport.write(b"zz\r\n")
        with self._lock:
            self.active_streams += 1
        try:
            await asyncio.sleep(script.stall_s)
        finally:
            with self._lock:
                self.active_streams -= 1
            transport.close()

    def _transport_of(self, request: Request) -> asyncio.Transport:
        """The transport of the request's connection (to write or break it by hand)."""
        assert self._server is not None and request.client is not None
        peer = (request.client.host, request.client.port)
        for connection in list(self._server.server_state.connections):
            if getattr(connection, "client", None) == peer:
                return connection.transport
        raise RuntimeError(f"no connection from {peer}")

    def _reset(self, request: Request) -> None:
        """Abort the request's TCP connection so the client reads a reset, not a response."""
        transport = self._transport_of(request)
        sock = transport.get_extra_info("socket")
        # Linger 0: close() sends RST at once instead of a polite FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])]
        )

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        """TCP connections the server under test holds open to this upstream right now."""
        return len(self._server.server_state.connections) if self._server else 0

    def start(self, port: int = 0) -> FakeOpenAI:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        with self._lock:
            gates, self._gates = self._gates, []
        for gate in gates:
            gate.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()


@dataclass
class _FaultInjector:
    rng: random.Random
    probability: float
    stream_faults: dict[str, Script]
    classify_faults: dict[str, Script]

    def pick(self, streamed: bool) -> tuple[str | None, Script]:
        faults = self.stream_faults if streamed else self.classify_faults
        if not faults or self.rng.random() >= self.probability:
            return None, Script()
        kind = self.rng.choice(sorted(faults))
        return kind, faults[kind]


# The fault kinds that strike before a reply's first content, and those that strike after.
BEFORE_CONTENT = frozenset(
    {
        "rate_limited",
        "unavailable",
        "reset",
        "cut_before_content",
        "malformed_before_content",
        "stall_before_content",
    }
)
AFTER_CONTENT = frozenset(
    {"cut_after_content", "malformed_after_content", "stall_after_content", "trickle"}
)


def fault_scripts(
    *,
    retry_after: str = "0",
    stall_s: float,
    content_before_fault: int = 2,
    trickle_tokens: int = 20,
    trickle_delay_s: float,
) -> dict[str, Script]:
    """One ``Script`` per fault kind, named as in ``BEFORE_CONTENT`` and ``AFTER_CONTENT``.

    ``stall_s`` must outlast the server's read timeout; a trickle sends ``trickle_tokens``
    tokens ``trickle_delay_s`` apart (inside the read timeout), so its whole reply takes
    longer than the server's reply deadline when the test sets them so.
    """
    after = content_before_fault
    return {
        "rate_limited": Script(status=429, headers={"Retry-After": retry_after}),
        "unavailable": Script(status=503),
        "reset": Script(reset=True),
        "cut_before_content": Script(cut_after=0),
        "malformed_before_content": Script(malformed_after=0),
        "stall_before_content": Script(stall_after=0, stall_s=stall_s),
        "cut_after_content": Script(cut_after=after),
        "malformed_after_content": Script(malformed_after=after),
        "stall_after_content": Script(stall_after=after, stall_s=stall_s),
        "trickle": Script(
            tokens=[f" drop{index}" for index in range(trickle_tokens)],
            token_delay=trickle_delay_s,
        ),
    }


def classify_fault_scripts(stream_faults: dict[str, Script]) -> dict[str, Script]:
    """The kinds a classifier request can suffer; its stall withholds the whole answer."""
    return {
        "rate_limited": stream_faults["rate_limited"],
        "unavailable": stream_faults["unavailable"],
        "reset": stream_faults["reset"],
        "stall_before_content": Script(headers_delay=stream_faults["stall_before_content"].stall_s),
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


# What the fake reports for a streamed reply with stream_options.include_usage: a fixed
# prompt and one token per streamed piece. The classifier's completion reports 1 and 1.
STREAM_PROMPT_TOKENS = 11


def _usage_chunk(model: str, prompt_tokens: int, completion_tokens: int) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
