"""A lean parser for an upstream chat-completions stream, from raw bytes to text deltas.

Why not the SDK's ``AsyncStream``: it builds a pydantic ``ChatCompletionChunk`` per token,
which profiles showed to be most of a relay's CPU. Here each event costs one
``orjson.loads`` and a few dict look-ups. Events that arrive in the same network read are
joined into one delta, so a client that fell behind catches up with fewer, larger frames.

An upstream that goes silent, or keeps trickling past the reply's deadline, is stopped
by the stream's ``StreamWatchdog``, told of every network read (one clock read, no
allocation).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import orjson

from chatbot.domain.errors import TurnError
from chatbot.llm.usage import StreamReport, parse_usage
from chatbot.llm.watchdog import StreamWatchdog


def _malformed(detail: str) -> TurnError:
    return TurnError("upstream_malformed", f"The language model sent a malformed reply ({detail}).")


async def iter_text_deltas(
    chunks: AsyncIterable[bytes],
    watch: StreamWatchdog | None = None,
    report: StreamReport | None = None,
) -> AsyncIterator[str]:
    """Yield the ``choices[0].delta.content`` text of an SSE byte stream.

    Raises ``TurnError`` for an ``error`` event, an undecodable event, or a stream that
    ends before ``[DONE]`` or a ``finish_reason`` (a reply cut off mid-way); ``watch``
    (the stream's watchdog) hears of every read and of the reply's end. ``report``, when
    given, receives the stream's usage (its usage-only last event, or a ``usage`` on the
    finishing event) and finish reason; both are read only on those rare events, never
    per token.
    """
    pending = b""
    data_lines: list[bytes] = []
    finished = False  # a finish_reason was seen: EOF is now a clean end
    done = False  # [DONE] was seen
    async for chunk in chunks:
        if watch is not None:
            watch.fed()
        if done:
            continue  # drain to EOF so the connection can go back to the pool
        if b"\n" not in chunk:
            pending += chunk
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        pieces: list[str] = []
        failure: TurnError | None = None
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                if line.startswith(b"data:"):
                    data_lines.append(line[5:].lstrip(b" "))
                continue  # comments, event:, id:, retry: lines carry no text
            if not data_lines:
                continue
            payload = data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines)
            data_lines = []
            if payload == b"[DONE]":
                done = True
                if watch is not None:
                    watch.finished()
                break
            try:
                try:
                    event = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise _malformed("an event is not valid JSON") from None
                if not isinstance(event, dict):
                    raise _malformed("an event is not a JSON object")
                error = event.get("error")
                if error is not None:
                    message = error.get("message") if isinstance(error, dict) else str(error)
                    raise TurnError(
                        "upstream_error", f"The language model reported an error: {message}"
                    )
                choices = event.get("choices")
                if not choices:
                    if report is not None and "usage" in event:
                        report.usage = parse_usage(event["usage"]) or report.usage
                    continue  # usage-only and keep-alive events
                try:
                    choice = choices[0]
                    delta = choice.get("delta")
                    content = delta.get("content") if delta else None
                    finish_reason = choice.get("finish_reason")
                except (AttributeError, TypeError, KeyError):
                    raise _malformed("an event does not have the chat-completions shape") from None
                if content:
                    if not isinstance(content, str):
                        raise _malformed("a delta's content is not text")
                    pieces.append(content)
                if finish_reason:
                    finished = True
                    if watch is not None:
                        watch.finished()
                    if report is not None:
                        report.finished(finish_reason)
                        report.usage = parse_usage(event.get("usage")) or report.usage
            except TurnError as exc:
                failure = exc
                break
        # Text that arrived before a fault in the same read was sent before it: pass it on.
        if pieces:
            if watch is not None:
                watch.pause()
            yield pieces[0] if len(pieces) == 1 else "".join(pieces)
            if watch is not None:
                watch.resume()
        if failure is not None:
            raise failure
    if not (finished or done):
        raise TurnError(
            "upstream_stream_cut", "The language model's reply was cut off before it finished."
        )
