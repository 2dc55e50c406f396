"""Baseline 2, the lean relay: the recipe a careful Python developer would follow.

A bare ASGI app (``bench.servers.bare``: no framework routing, no pydantic), one
shared ``httpx`` client streaming from the upstream, upstream SSE lines parsed by hand
with orjson (no SDK objects), frames encoded with orjson and sent straight to the ASGI
``send``. Run it under uvicorn with uvloop + httptools and no access log. Same frames
and in-memory conversations as the naive relay.

Run: ``uvicorn bench.servers.lean:app --loop uvloop --http httptools --no-access-log``
"""

from __future__ import annotations

import httpx
import orjson

from bench.servers.bare import COMPLETIONS_URL, UPSTREAM_HEADERS, Send, bare_app, frame

_client: httpx.AsyncClient | None = None


async def _start() -> None:
    global _client
    _client = httpx.AsyncClient(
        headers=UPSTREAM_HEADERS,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=2000),
        timeout=httpx.Timeout(120.0, connect=10.0),
    )


async def _stop() -> None:
    if _client is not None:
        await _client.aclose()


async def relay(send: Send, request: bytes) -> str:
    assert _client is not None
    parts: list[str] = []
    buf = b""
    async with _client.stream("POST", COMPLETIONS_URL, content=request) as r:
        async for raw in r.aiter_raw():
            lines = (buf + raw).split(b"\n")
            buf = lines.pop()
            for line in lines:
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:]
                if payload == b"[DONE]":
                    break
                choices = orjson.loads(payload).get("choices")
                text = choices[0]["delta"].get("content") if choices else None
                if text:
                    parts.append(text)
                    await send(
                        {
                            "type": "http.response.body",
                            "body": frame("delta", text),
                            "more_body": True,
                        }
                    )
    return "".join(parts)


app = bare_app(relay, _start, _stop)
