"""The offline model behind an ``httpx`` transport that speaks OpenAI's chat-completions protocol.

Why a transport and not a function call: the ``openai`` SDK, our SSE parser and every
error path above it run unchanged, so the offline default exercises production code.
Why not httpx's ``ASGITransport``: it buffers the whole response, and this must stream.
Chunks are produced lazily, one per ``pace_s``, so the first reaches the client while
the rest do not exist yet.

Like a real server it honours ``max_tokens`` / ``max_completion_tokens``, ``stop`` and
``stream_options.include_usage``, and reports usage in both modes; its tokens are
whitespace-separated words, an honest count for a model that has no tokenizer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from chatbot.domain.text import split_tokens
from chatbot.llm.http import httpx
from chatbot.llm.offline import writer

_ids = itertools.count(1)


@dataclass
class OfflineStats:
    """Counters the tests read to see that streaming is real and cancellation reaches here."""

    requests: int = 0
    chunks_produced: int = 0
    streams_open: int = 0
    streams_cancelled: int = 0


def _error(status: int, message: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return httpx.Response(status, content=orjson.dumps(body), headers=_JSON)


_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def _count(text: str) -> int:
    return len(text.split())


def _usage(messages: list, reply: str) -> dict[str, int]:
    prompt = sum(_count(str(m.get("content") or "")) for m in messages if isinstance(m, dict))
    completion = _count(reply)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _limited(text: str, body: dict) -> tuple[str, str]:
    """``text`` cut at the first ``stop`` sequence and to ``max_tokens`` words; and why it ended."""
    stop = body.get("stop")
    for sequence in [stop] if isinstance(stop, str) else stop or ():
        if isinstance(sequence, str) and sequence and sequence in text:
            text = text[: text.index(sequence)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        words = split_tokens(text)
        if len(words) > limit:
            return "".join(words[:limit]), "length"
    return text, "stop"


class _ChunkStream(httpx.AsyncByteStream):
    def __init__(
        self,
        model: str,
        tokens: list[str],
        pace_s: float,
        stats: OfflineStats,
        *,
        finish_reason: str = "stop",
        usage: dict[str, int] | None = None,
    ):
        self._model = model
        self._tokens = tokens
        self._pace_s = pace_s
        self._stats = stats
        self._finish_reason = finish_reason
        self._usage = usage  # sent as a last, choice-less chunk when the client asked for it
        self._closed = False

    def _chunk(
        self, completion_id: str, created: int, delta: dict | None, finish: str | None
    ) -> bytes:
        payload: dict = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self._model,
            "choices": [] if delta is None else [
                {"index": 0, "delta": delta, "finish_reason": finish}
            ],
        }
        if self._usage is not None:
            payload["usage"] = self._usage if delta is None else None
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        completion_id = f"chatcmpl-offline-{next(_ids)}"
        created = int(time.time())
        self._stats.streams_open += 1
        finished = False
        try:
            yield self._chunk(completion_id, created, {"role": "assistant", "content": ""}, None)
            for index, token in enumerate(self._tokens):
                if index and self._pace_s:
                    await asyncio.sleep(self._pace_s)
                self._stats.chunks_produced += 1
                yield self._chunk(completion_id, created, {"content": token}, None)
            yield self._chunk(completion_id, created, {}, self._finish_reason)
            if self._usage is not None:
                yield self._chunk(completion_id, created, None, None)
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            self._stats.streams_open -= 1
            if not finished:
                self._stats.streams_cancelled += 1

    async def aclose(self) -> None:
        self._closed = True


class OfflineModelTransport(httpx.AsyncBaseTransport):
    """Answers ``POST …/chat/completions`` like an OpenAI-compatible server would."""

    def __init__(self, pace_s: float = 0.03, words_per_chunk: int = 1) -> None:
        self.pace_s = pace_s
        self.words_per_chunk = words_per_chunk
        self.stats = OfflineStats()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _error(
                404, f"The offline model only serves chat completions, not {request.url.path}."
            )
        self.stats.requests += 1
        try:
            body = orjson.loads(await request.aread())
            messages = body["messages"]
            model = str(body.get("model") or "offline")
            if not isinstance(messages, list) or not messages:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "The request needs a non-empty 'messages' list.")
        system = "\n".join(
            str(m.get("content", ""))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "system"
        )
        chat = [
            m for m in messages if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        ]
        text, finish_reason = _limited(writer.reply(system, chat), body)
        usage = _usage(messages, text)
        if body.get("stream"):
            options = body.get("stream_options")
            wants_usage = isinstance(options, dict) and options.get("include_usage") is True
            stream = _ChunkStream(
                model,
                split_tokens(text, self.words_per_chunk),
                self.pace_s,
                self.stats,
                finish_reason=finish_reason,
                usage=usage if wants_usage else None,
            )
            return httpx.Response(200, headers=_SSE, stream=stream)
        completion = {
            "id": f"chatcmpl-offline-{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        return httpx.Response(200, content=orjson.dumps(completion), headers=_JSON)
