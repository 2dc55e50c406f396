"""A fake OpenAI-compatible server on loopback, speaking the real chat-completions wire format.

It runs in a thread of the test process (a real uvicorn server on a real socket), records
every request, and can be scripted per call: the classifier's answer, the streamed tokens
and their pace, a gate that holds the stream until the test says go, and faults (HTTP
errors with ``Retry-After``, slow headers, a stream cut mid-reply, malformed chunks).
"""

from __future__ import annotations

import asyncio
import json
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
    gate_after: int | None = None  # hold the stream after this many tokens…
    gate: threading.Event | None = None  # …until this is set
    cut_after: int | None = None  # drop the connection after this many tokens
    malformed_after: int | None = None  # then send a chunk that is not JSON
    error_event_after: int | None = None  # then send an ``{"error": …}`` event


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

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
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_cancelled = 0
        self.active_streams = 0
        self._classify_scripts: deque[Script] = deque()
        self._stream_scripts: deque[Script] = deque()
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

    def reset(self) -> None:
        with self._lock:
            self._classify_scripts.clear()
            self._stream_scripts.clear()
            self.requests.clear()
            self.streams_started = self.streams_completed = self.streams_cancelled = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def streamed_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.stream]

    def classifier_requests(self) -> list[Recorded]:
        return [r for r in self.requests if not r.stream]

    # --- HTTP ---------------------------------------------------------------------------
    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(Recorded(request.url.path, dict(request.headers), body))
            queue = self._stream_scripts if body.get("stream") else self._classify_scripts
            script = queue.popleft() if queue else Script()
        if script.headers_delay:
            await asyncio.sleep(script.headers_delay)
        if script.status != 200:
            error = {"error": {"message": script.error_message, "type": "server_error"}}
            return JSONResponse(error, status_code=script.status, headers=script.headers)
        model = body.get("model", "fake")
        if not body.get("stream"):
            answer = script.answer if script.answer is not None else self.classifier_answer
            return JSONResponse(_completion(model, answer), headers=script.headers)
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
            self.streams_started += 1
            self.active_streams += 1
        completed = False
        try:
            yield _chunk(model, {"role": "assistant", "content": ""}, None)
            for index, token in enumerate(tokens):
                if script.cut_after is not None and index == script.cut_after:
                    raise _Cut()
                if script.malformed_after is not None and index == script.malformed_after:
                    yield b"data: {this is not json\n\n"
                if script.error_event_after is not None and index == script.error_event_after:
                    yield b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
                if script.gate is not None and script.gate_after == index:
                    await asyncio.to_thread(script.gate.wait, 30)
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
