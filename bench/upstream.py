"""A fake OpenAI-compatible chat-completions server that is never the bottleneck.

``POST /v1/chat/completions``
    ``"stream": true``: the real wire format, ``data: {chunk}\\n\\n`` frames (a role
    chunk, ``--deltas`` content chunks ``--pace`` seconds apart, a finish chunk),
    then ``data: [DONE]\\n\\n``. Otherwise: one ``chat.completion`` JSON whose
    message content is the mode word (``--mode-word``), the classifier's answer,
    after ``--classifier-delay`` seconds.
``GET /stats``  counters (requests served, streams, lateness of the pacing timer).
``GET /health`` ``ok``.

It is a raw asyncio protocol on uvloop with httptools parsing requests; every
frame is encoded once at start-up (HTTP chunked framing included), and each
stream is paced by ``loop.call_at`` callbacks at absolute times, so a token costs
one timer and one ``transport.write``: no coroutine, no JSON encoding.

Run: ``python -m bench.upstream --port 0 --deltas 50 --pace 0.02``; it prints
``READY <port>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from dataclasses import dataclass

import httptools
import orjson

from bench import wire


@dataclass
class Config:
    deltas: int = 50
    pace: float = 0.02
    first_delay: float | None = None  # time to first token; None = one pace
    mode_word: str = "answer_question"
    classifier_delay: float | None = None  # None = one pace


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(payload: bytes) -> bytes:
    return _chunked(b"data: " + payload + b"\n\n")


class Frames:
    """Every byte the server sends, encoded once."""

    def __init__(self, cfg: Config):
        self.head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        ) + _sse(wire.chunk_json({"role": "assistant", "content": ""}))
        self.deltas = [_sse(wire.chunk_json({"content": d})) for d in wire.reply_deltas(cfg.deltas)]
        self.tail = _sse(wire.chunk_json({}, finish_reason="stop")) + _sse(b"[DONE]") + b"0\r\n\r\n"
        body = wire.completion_json(cfg.mode_word)
        self.classify = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )


def _plain(status: bytes, body: bytes, ctype: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        ctype,
        len(body),
        body,
    )


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.connections = 0
        self.open_connections = 0
        self.requests = 0  # chat-completions requests (streamed + classifier)
        self.other_requests = 0  # /stats, /health, 404s
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_aborted = 0
        self.open_streams = 0
        self.max_open_streams = 0
        self.classify = 0
        self.bad_requests = 0
        self.late_ticks = 0  # timer callbacks that fired more than 5 ms late
        self.max_lateness = 0.0
        self.ticks = 0

    def as_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items()}
        ru = resource.getrusage(resource.RUSAGE_SELF)
        d["cpu_seconds"] = ru.ru_utime + ru.ru_stime
        d["pid"] = os.getpid()
        return d


class Stream:
    """One streamed reply in flight on a connection."""

    __slots__ = ("conn", "t0", "i", "handle")

    def __init__(self, conn: UpstreamProtocol, t0: float):
        self.conn = conn
        self.t0 = t0
        self.i = 0
        self.handle: asyncio.TimerHandle | None = None


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, cfg: Config, frames: Frames, stats: Stats):
        self.cfg = cfg
        self.frames = frames
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.stream: Stream | None = None
        self.pending: asyncio.TimerHandle | None = None
        self.first_delay = cfg.pace if cfg.first_delay is None else cfg.first_delay
        self.classifier_delay = cfg.pace if cfg.classifier_delay is None else cfg.classifier_delay

    # -- asyncio.Protocol
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        self.stats.connections += 1
        self.stats.open_connections += 1

    def connection_lost(self, exc):  # type: ignore[override]
        self.stats.open_connections -= 1
        if self.stream is not None:
            if self.stream.handle is not None:
                self.stream.handle.cancel()
            self.stream = None
            self.stats.streams_aborted += 1
            self.stats.open_streams -= 1
        if self.pending is not None:
            self.pending.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.stats.bad_requests += 1
            if self.transport is not None:
                self.transport.write(_plain(b"400 Bad Request", b'{"error":"bad request"}'))
                self.transport.close()

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self.stats.requests += 1
            self._completions(b"".join(self.body))
            return
        self.stats.other_requests += 1
        if path == b"/stats":
            self._send(_plain(b"200 OK", orjson.dumps(self.stats.as_dict())))
        elif path == b"/health":
            self._send(_plain(b"200 OK", b"ok", b"text/plain"))
        else:
            self._send(_plain(b"404 Not Found", b'{"error":"not found"}'))

    # -- behaviour
    def _send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _completions(self, body: bytes) -> None:
        try:
            request = orjson.loads(body)
            streaming = bool(request.get("stream"))
        except (orjson.JSONDecodeError, AttributeError):
            self.stats.bad_requests += 1
            self._send(_plain(b"400 Bad Request", b'{"error":{"message":"bad json"}}'))
            return
        if not streaming:
            self.stats.classify += 1
            if self.classifier_delay > 0:
                self.pending = self.loop.call_later(self.classifier_delay, self._classified)
            else:
                self._classified()
            return
        stats = self.stats
        stats.streams_started += 1
        stats.open_streams += 1
        if stats.open_streams > stats.max_open_streams:
            stats.max_open_streams = stats.open_streams
        self._send(self.frames.head)
        stream = Stream(self, self.loop.time() + self.first_delay)
        self.stream = stream
        if not self.frames.deltas:
            self._finish()
            return
        stream.handle = self.loop.call_at(stream.t0, self._tick)

    def _classified(self) -> None:
        self.pending = None
        self._send(self.frames.classify)

    def _tick(self) -> None:
        stream = self.stream
        if stream is None or self.transport is None:
            return
        stats = self.stats
        stats.ticks += 1
        due = stream.t0 + stream.i * self.cfg.pace
        late = self.loop.time() - due
        if late > 0.005:
            stats.late_ticks += 1
        if late > stats.max_lateness:
            stats.max_lateness = late
        self.transport.write(self.frames.deltas[stream.i])
        stream.i += 1
        if stream.i < len(self.frames.deltas):
            stream.handle = self.loop.call_at(stream.t0 + stream.i * self.cfg.pace, self._tick)
        else:
            self._finish()

    def _finish(self) -> None:
        self._send(self.frames.tail)
        self.stream = None
        self.stats.streams_completed += 1
        self.stats.open_streams -= 1


def run_fast(coro):
    """``asyncio.run`` on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        return asyncio.run(coro)
    return uvloop.run(coro)


async def serve(cfg: Config, host: str, port: int) -> None:
    frames = Frames(cfg)
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(cfg, frames, stats), host, port, backlog=4096
    )
    actual = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {actual}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def parse_args(argv: list[str] | None = None) -> tuple[Config, str, int]:
    p = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--deltas", type=int, default=50, help="content deltas per streamed reply")
    p.add_argument("--pace", type=float, default=0.02, help="seconds between deltas")
    p.add_argument("--first-delay", type=float, default=None, help="seconds to the first delta")
    p.add_argument("--mode-word", default="answer_question", help="the classifier's answer")
    p.add_argument("--classifier-delay", type=float, default=None, help="classifier latency (s)")
    a = p.parse_args(argv)
    cfg = Config(a.deltas, a.pace, a.first_delay, a.mode_word, a.classifier_delay)
    return cfg, a.host, a.port


def main(argv: list[str] | None = None) -> None:
    cfg, host, port = parse_args(argv)
    try:
        run_fast(serve(cfg, host, port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
