"""The floor: the leanest relay of the same frames we know how to write in Python.

The bare ASGI shell of ``bench.servers.bare`` (no framework, no SDK, no graph, no
persistence), with one shared ``aiohttp`` session as the upstream client: aiohttp
parses the upstream's HTTP in C and hands over whatever one network read brought
(``iter_any``), so a token costs one read, one ``orjson.loads`` and one ``send``. A
delta frame is built from bytes (a constant head, the orjson-encoded text, a constant
tail) without a dict. Run under uvicorn with uvloop + httptools and no access log.

This server's CPU per delta is the yardstick the product is held to (``RESULTS.md``):
whatever it costs, no relay of these frames in Python costs less that we know of.

Run: ``uvicorn bench.servers.floor:app --loop uvloop --http httptools --no-access-log``
"""

from __future__ import annotations

import aiohttp
import orjson

from bench.servers.bare import COMPLETIONS_URL, UPSTREAM_HEADERS, Send, bare_app

_DELTA_HEAD = b'data: {"type":"delta","value":'
_DELTA_TAIL = b"}\n\n"
_MARKER = b"data: "  # must not occur inside a payload (Burr's page splits on it)
_ESCAPED = b"data:\\u0020"

_session: aiohttp.ClientSession | None = None


async def _start() -> None:
    global _session
    _session = aiohttp.ClientSession(
        headers=UPSTREAM_HEADERS,
        connector=aiohttp.TCPConnector(limit=0),  # no pool limit, like the other relays
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
    )


async def _stop() -> None:
    if _session is not None:
        await _session.close()


async def relay(send: Send, request: bytes) -> str:
    assert _session is not None
    parts: list[str] = []
    buf = b""
    async with _session.post(COMPLETIONS_URL, data=request) as r:
        async for raw in r.content.iter_any():
            lines = (buf + raw).split(b"\n") if buf else raw.split(b"\n")
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
                    encoded = orjson.dumps(text)
                    if _MARKER in encoded:
                        encoded = encoded.replace(_MARKER, _ESCAPED)
                    await send(
                        {
                            "type": "http.response.body",
                            "body": _DELTA_HEAD + encoded + _DELTA_TAIL,
                            "more_body": True,
                        }
                    )
    return "".join(parts)


app = bare_app(relay, _start, _stop)
