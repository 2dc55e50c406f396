"""The ``/v1`` floor: a byte relay of ``POST /v1/chat/completions``.

The leanest OpenAI-compatible proxy we know how to write in Python: a bare ASGI app and
one shared ``aiohttp`` session; the request body goes upstream as it came, and the
upstream's answer comes back as it is, each network read passed on as one body chunk
(no parsing, no JSON, no state). What our ``/v1`` route costs per delta above this is
the price of the chatbot (the graph, the classifier call, the history, the store).

Run: ``uvicorn bench.servers.floor_v1:app --loop uvloop --http httptools --no-access-log``
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bench.servers.bare import COMPLETIONS_URL, UPSTREAM_HEADERS, Receive, Send

V1_PATH = "/v1/chat/completions"
_NOT_FOUND = b'{"error": {"message": "not found", "type": "invalid_request_error"}}'

_session: aiohttp.ClientSession | None = None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _relay(send: Send, body: bytes) -> None:
    assert _session is not None
    async with _session.post(COMPLETIONS_URL, data=body) as r:
        kind = r.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": r.status,
                "headers": [(b"content-type", kind)],
            }
        )
        async for raw in r.content.iter_any():
            await send({"type": "http.response.body", "body": raw, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _session = aiohttp.ClientSession(
                    headers=UPSTREAM_HEADERS,
                    connector=aiohttp.TCPConnector(limit=0),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await _read_body(receive)
    if scope["method"] == "POST" and scope["path"] == V1_PATH:
        await _relay(send, body)
        return
    # Anything else (the harness's readiness probe included): a small 404.
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": _NOT_FOUND})
