"""The load generator: N concurrent conversations x T turns against one server.

Each conversation holds one keep-alive HTTP/1.1 connection (a new one after an
error) and runs its turns back to back, reading the Server-Sent Events as they
arrive. It speaks one of two protocols (``--protocol``):

- ``burr-ui`` (default): ``POST {prefix}/create/{project}/{app}`` once, then per
  turn ``POST {prefix}/response/{project}/{app}`` with ``{"prompt": ...}``. The
  contract: the first frame is ``chat_history``; the non-empty ``delta`` values,
  concatenated, are the fake upstream's reply.
- ``v1``: per turn ``POST /v1/chat/completions`` with ``stream: true``, the
  conversation named by ``X-Conversation-Id`` so only the new user message is
  sent (the server holds the history; the first turn creates the conversation).
  The contract: the first chunk is the assistant's role chunk; the non-empty
  ``delta.content`` values are the reply; a chunk carries a ``finish_reason``;
  ``data: [DONE]`` ends the reply.

Per turn it records the time to the first non-empty delta and every gap between
non-empty deltas. A turn that breaks the contract counts as an error, never as a
sample.

It is a raw asyncio protocol on uvloop with httptools decoding the chunked
body, so it costs a few microseconds per frame. Its own CPU time and event-loop
lag are reported so a saturated load generator shows up in the results instead
of passing for a slow server.

Run: ``python -m bench.loadgen --port P --conversations 20 --turns 5 --deltas 50``;
the summary is written as JSON to ``--out`` (or stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import sys
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field

import httptools
import orjson

from bench import wire

PREFIX = "/api/v0/streaming_chatbot"
V1_PATH = "/v1/chat/completions"
V1_MODEL = "burr-chatbot"
V1_CONVERSATION_HEADER = "x-conversation-id"
PROTOCOLS = ("burr-ui", "v1")
_DONE = b"[DONE]"
_CHUNK = "chat.completion.chunk"
PROMPTS = (
    "What is the capital of France?",
    "How does a streaming proxy keep latency low?",
    "Why is the sky blue?",
    "What does a state machine give a chatbot?",
    "How many tokens per second can a person read?",
)


@dataclass
class LoadConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    prefix: str = PREFIX
    project: str = "bench"
    app_prefix: str = "conv"
    conversations: int = 20
    turns: int = 5
    deltas: int = 50  # content deltas the upstream sends per reply
    stagger: float = 0.0  # conversation i starts at i * stagger / N seconds
    think: float = 0.0  # pause between a conversation's turns
    turn_timeout: float = 120.0
    create: bool = True  # burr-ui only: /v1 creates a named conversation on its first turn
    protocol: str = "burr-ui"  # one of PROTOCOLS


@dataclass
class Summary:
    conversations: int = 0
    turns_planned: int = 0
    turns_ok: int = 0
    deltas: int = 0  # non-empty delta frames in good turns
    empty_deltas: int = 0
    frames: int = 0
    end_frames: int = 0
    errors: dict = field(default_factory=dict)
    ttfd: list = field(default_factory=list)  # seconds, one per good turn
    ttfd_p50: float = 0.0
    ttfd_p99: float = 0.0
    gap_p50: float = 0.0
    gap_p99: float = 0.0
    gap_max: float = 0.0
    gaps: int = 0
    wall: float = 0.0
    cpu: float = 0.0  # the load generator's own CPU seconds during the load
    loop_lag_p99: float = 0.0
    loop_lag_max: float = 0.0
    max_open_streams: int = 0
    tail_p50: float = 0.0
    tail_p99: float = 0.0
    turn_p50: float = 0.0
    mean_open_streams: float = 0.0  # time-weighted: turns in flight, averaged over the run


def percentile(values, q: float, presorted: bool = False) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not len(values):
        return 0.0
    s = values if presorted else sorted(values)
    k = min(len(s), max(1, math.ceil(q / 100.0 * len(s))))
    return float(s[k - 1])


class Recorder:
    """Everything one load generator run measures."""

    def __init__(self) -> None:
        self.ttfd: list[float] = []
        self.gaps = array("d")
        self.errors: Counter[str] = Counter()
        self.turns_ok = 0
        self.deltas = 0
        self.empty_deltas = 0
        self.frames = 0
        self.end_frames = 0
        self.open_streams = 0
        self.max_open_streams = 0
        self.tails: list[float] = []  # last delta -> end of the response
        self.turn_times: list[float] = []  # request sent -> end of the response
        self.busy_seconds = 0.0  # sum over turns of request sent -> response ended (or failed)


class TurnError(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class Exchange:
    """One request and its response; this one keeps a plain body (``create``)."""

    sse = False
    __slots__ = (
        "t_send",
        "status",
        "future",
        "buf",
        "body",
        "first",
        "ttfd",
        "last",
        "text",
        "gaps",
        "frames",
        "empty",
        "end",
        "error_frames",
        "first_type",
        "t_done",
    )

    def __init__(self, future: asyncio.Future):
        self.future = future
        self.t_send = 0.0
        self.status = 0
        self.buf = b""
        self.body: list[bytes] = []
        self.first = True
        self.ttfd = 0.0
        self.last = 0.0
        self.text: list[str] = []
        self.gaps: list[float] = []
        self.frames = 0
        self.empty = 0
        self.end = False
        self.error_frames = 0
        self.first_type: str | None = None
        self.t_done = 0.0

    def feed(self, chunk: bytes, now: float) -> None:
        self.body.append(chunk)

    def contract_error(self) -> str | None:
        """What this reply broke of its protocol's contract (the text is checked apart)."""
        return None


class EventExchange(Exchange):
    """A Server-Sent Events response, cut into events however the bytes arrive."""

    sse = True
    __slots__ = ()

    def feed(self, chunk: bytes, now: float) -> None:
        parts = (self.buf + chunk).split(b"\n\n")
        self.buf = parts.pop()
        for event in parts:
            data = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            if data:
                self.frames += 1
                self.on_data(b"\n".join(data), now)

    def on_data(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def on_text(self, value: str, now: float) -> None:
        """A non-empty delta: the time to the first one, or the gap since the last."""
        if self.first:
            self.first = False
            self.ttfd = now - self.t_send
        else:
            self.gaps.append(now - self.last)
        self.last = now
        self.text.append(value)


class BurrUiExchange(EventExchange):
    """The Burr demo page's frames: ``chat_history``, ``delta``s, ``end`` or ``error``."""

    __slots__ = ()

    def on_data(self, data: bytes, now: float) -> None:
        try:
            frame = orjson.loads(data)
            kind = frame["type"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            self.error_frames += 1
            return
        if self.first_type is None:
            self.first_type = kind
        if kind == "delta":
            value = frame.get("value")
            if value:
                self.on_text(value, now)
            else:
                self.empty += 1
        elif kind == "end":
            self.end = True
        elif kind == "error":
            self.error_frames += 1

    def contract_error(self) -> str | None:
        if self.first_type != "chat_history":
            return "first_frame_not_chat_history"
        if self.error_frames:
            return "error_frame"
        return None


class ChunkExchange(EventExchange):
    """OpenAI's ``chat.completion.chunk`` events, ended by ``data: [DONE]``.

    The role chunk (``content: ""``) counts as an empty delta, as the SDK's role chunk
    does on the Burr-UI route; the usage chunk (``choices: []``) is not a delta. A
    mid-stream ``{"error": ...}`` event, or anything else that is not a chunk, is an
    error frame.
    """

    __slots__ = ("finish",)

    def __init__(self, future: asyncio.Future):
        super().__init__(future)
        self.finish: str | None = None

    def on_data(self, data: bytes, now: float) -> None:
        if data.strip() == _DONE:
            self.end = True
            return
        try:
            frame = orjson.loads(data)
            if frame["object"] != _CHUNK:
                raise KeyError("object")
            choices = frame["choices"]
            choice = choices[0] if choices else None
            delta = choice["delta"] if choice is not None else None
        except (orjson.JSONDecodeError, TypeError, KeyError, IndexError):
            self.error_frames += 1
            return
        if choice is None:
            return  # the usage chunk
        if self.first_type is None:
            self.first_type = "role" if delta.get("role") == "assistant" else "content"
        content = delta.get("content")
        if content:
            self.on_text(content, now)
        elif content is not None:
            self.empty += 1
        reason = choice.get("finish_reason")
        if reason:
            self.finish = reason

    def contract_error(self) -> str | None:
        if self.first_type != "role":
            return "first_chunk_not_role"
        if self.error_frames:
            return "error_frame"
        if self.finish is None:
            return "no_finish_reason"
        if not self.end:
            return "no_done"
        return None


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection, one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = True
        self.closed = False
        self.now = 0.0

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc):  # type: ignore[override]
        self.closed = True
        ex = self.exchange
        if ex is not None and not ex.future.done():
            ex.future.set_exception(TurnError("disconnect"))

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            ex = self.exchange
            if ex is not None and not ex.future.done():
                ex.future.set_exception(TurnError("bad_http"))
            self.close()

    def on_headers_complete(self) -> None:
        if self.exchange is not None and self.parser is not None:
            self.exchange.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.feed(body, self.now)

    def on_message_complete(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.t_done = self.now
        if self.parser is not None:
            self.keep_alive = self.parser.should_keep_alive()
        if ex is not None and not ex.future.done():
            ex.future.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(
        self, ex: Exchange, method: str, path: str, body: bytes, host: str, headers: bytes = b""
    ) -> None:
        self.exchange = ex
        self.parser = httptools.HttpResponseParser(self)
        accept = b"accept: text/event-stream\r\n" if ex.sse else b""
        head = (
            (
                f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            ).encode()
            + accept
            + headers
            + b"\r\n"
        )
        ex.t_send = time.perf_counter()
        assert self.transport is not None
        self.transport.write(head + body)


class Conversation:
    def __init__(self, cfg: LoadConfig, index: int, rec: Recorder, expected: str):
        self.cfg = cfg
        self.index = index
        self.rec = rec
        self.expected = expected
        self.app_id = f"{cfg.app_prefix}-{index}"
        self.conn: Connection | None = None
        self.loop = asyncio.get_running_loop()
        self.hostport = f"{cfg.host}:{cfg.port}"

    async def _connection(self) -> Connection:
        if self.conn is None or self.conn.closed or not self.conn.keep_alive:
            if self.conn is not None:
                self.conn.close()
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(Connection, self.cfg.host, self.cfg.port), 30
            )
            self.conn = conn
        return self.conn

    async def _exchange(
        self, path: str, body: bytes, kind: type[Exchange], headers: bytes = b""
    ) -> Exchange:
        conn = await self._connection()
        ex = kind(self.loop.create_future())
        conn.request(ex, "POST", path, body, self.hostport, headers)
        try:
            await asyncio.wait_for(ex.future, self.cfg.turn_timeout)
        except TimeoutError:
            conn.close()
            raise TurnError("timeout") from None
        except TurnError:
            conn.close()
            raise
        finally:
            conn.exchange = None
        return ex

    async def run(self) -> None:
        cfg, rec = self.cfg, self.rec
        if cfg.stagger > 0 and cfg.conversations > 1:
            await asyncio.sleep(cfg.stagger * self.index / cfg.conversations)
        where = f"{cfg.project}/{self.app_id}"
        v1 = cfg.protocol == "v1"
        if v1:
            path, kind = V1_PATH, ChunkExchange
            headers = f"{V1_CONVERSATION_HEADER}: {self.app_id}\r\n".encode()
        else:
            path, kind, headers = f"{cfg.prefix}/response/{where}", BurrUiExchange, b""
        if cfg.create and not v1:
            try:
                ex = await self._exchange(f"{cfg.prefix}/create/{where}", b"", Exchange)
                if ex.status >= 300:
                    rec.errors[f"create_http_{ex.status}"] += 1
            except (TimeoutError, TurnError, OSError) as e:
                rec.errors[f"create_{getattr(e, 'kind', type(e).__name__)}"] += 1
        for turn in range(cfg.turns):
            if turn and cfg.think > 0:
                await asyncio.sleep(cfg.think)
            prompt = f"{PROMPTS[(self.index + turn) % len(PROMPTS)]} (turn {turn + 1})"
            body = self._body(prompt)
            rec.open_streams += 1
            rec.max_open_streams = max(rec.max_open_streams, rec.open_streams)
            t_turn = time.perf_counter()
            try:
                ex = await self._exchange(path, body, kind, headers)
            except TurnError as e:
                rec.errors[e.kind] += 1
                continue
            except (TimeoutError, OSError) as e:
                rec.errors[f"connect_{type(e).__name__}"] += 1
                continue
            finally:
                rec.open_streams -= 1
                rec.busy_seconds += time.perf_counter() - t_turn
            self._account(ex)

    def _body(self, prompt: str) -> bytes:
        if self.cfg.protocol != "v1":
            return orjson.dumps({"prompt": prompt})
        # The server holds the history of the conversation the header names: a client
        # that keeps the id sends only the new message.
        message = {"role": "user", "content": prompt}
        return orjson.dumps({"model": V1_MODEL, "stream": True, "messages": [message]})

    def _account(self, ex: Exchange) -> None:
        rec = self.rec
        rec.frames += ex.frames
        rec.empty_deltas += ex.empty
        rec.end_frames += ex.end
        if ex.status != 200:
            rec.errors[f"http_{ex.status}"] += 1
        elif broken := ex.contract_error():
            rec.errors[broken] += 1
        elif "".join(ex.text) != self.expected:
            rec.errors["content_mismatch"] += 1
        else:
            rec.turns_ok += 1
            rec.deltas += len(ex.text)
            rec.ttfd.append(ex.ttfd)
            rec.gaps.extend(ex.gaps)
            rec.tails.append(ex.t_done - ex.last)
            rec.turn_times.append(ex.t_done - ex.t_send)


async def _loop_lag(samples: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    """How late a 10 ms timer fires: the load generator's own saturation."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period)
        samples.append(loop.time() - t - period)


async def run_load(cfg: LoadConfig) -> Summary:
    rec = Recorder()
    expected = wire.reply_text(cfg.deltas)
    lag: list[float] = []
    stop = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(lag, stop))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    convs = [Conversation(cfg, i, rec, expected) for i in range(cfg.conversations)]
    await asyncio.gather(*(c.run() for c in convs))
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await lag_task
    for c in convs:
        if c.conn is not None:
            c.conn.close()
    gaps = sorted(rec.gaps)
    return Summary(
        conversations=cfg.conversations,
        turns_planned=cfg.conversations * cfg.turns,
        turns_ok=rec.turns_ok,
        deltas=rec.deltas,
        empty_deltas=rec.empty_deltas,
        frames=rec.frames,
        end_frames=rec.end_frames,
        errors=dict(rec.errors),
        ttfd=rec.ttfd,
        ttfd_p50=percentile(rec.ttfd, 50),
        ttfd_p99=percentile(rec.ttfd, 99),
        gap_p50=percentile(gaps, 50, presorted=True),
        gap_p99=percentile(gaps, 99, presorted=True),
        gap_max=gaps[-1] if gaps else 0.0,
        gaps=len(gaps),
        wall=wall,
        cpu=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        loop_lag_p99=percentile(lag, 99),
        loop_lag_max=max(lag) if lag else 0.0,
        max_open_streams=rec.max_open_streams,
        tail_p50=percentile(rec.tails, 50),
        tail_p99=percentile(rec.tails, 99),
        turn_p50=percentile(rec.turn_times, 50),
        mean_open_streams=rec.busy_seconds / wall if wall else 0.0,
    )


def parse_args(argv: list[str] | None = None) -> tuple[LoadConfig, str | None]:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    d = LoadConfig()
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default=d.prefix)
    p.add_argument("--project", default=d.project)
    p.add_argument("--app-prefix", default=f"conv{os.getpid()}")
    p.add_argument("--conversations", type=int, default=d.conversations)
    p.add_argument("--turns", type=int, default=d.turns)
    p.add_argument("--deltas", type=int, default=d.deltas)
    p.add_argument("--stagger", type=float, default=d.stagger)
    p.add_argument("--think", type=float, default=d.think)
    p.add_argument("--turn-timeout", type=float, default=d.turn_timeout)
    p.add_argument("--no-create", action="store_true")
    p.add_argument("--protocol", choices=PROTOCOLS, default=d.protocol)
    p.add_argument("--out", default=None, help="write the JSON summary here (default stdout)")
    a = p.parse_args(argv)
    cfg = LoadConfig(
        host=a.host,
        port=a.port,
        prefix=a.prefix,
        project=a.project,
        app_prefix=a.app_prefix,
        conversations=a.conversations,
        turns=a.turns,
        deltas=a.deltas,
        stagger=a.stagger,
        think=a.think,
        turn_timeout=a.turn_timeout,
        create=not a.no_create,
        protocol=a.protocol,
    )
    return cfg, a.out


def main(argv: list[str] | None = None) -> None:
    from bench.upstream import run_fast

    cfg, out = parse_args(argv)
    summary = run_fast(run_load(cfg))
    data = orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2)
    if out:
        with open(out, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data + b"\n")


if __name__ == "__main__":
    main()
