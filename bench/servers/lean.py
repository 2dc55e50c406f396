"""Baseline 2, the lean floor: the cheapest relay of the same frames in Python.

A bare ASGI app (no framework routing, no pydantic), one shared ``httpx``
client streaming from the upstream, upstream SSE lines parsed by hand with
orjson (no SDK objects), frames encoded with orjson and sent straight to the
ASGI ``send``. Run it under uvicorn with uvloop + httptools and no access log.
Same frames and in-memory conversations as the naive relay.

Run: ``uvicorn bench.servers.lean:app --loop uvloop --http httptools --no-access-log``
"""

from __future__ import annotations

import os
import time

import httpx
import orjson

PREFIX = "/api/v0/streaming_chatbot/"
BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1").rstrip("/")
API_KEY = os.environ.get("OPENAI_API_KEY", "")

_client: httpx.AsyncClient | None = None
conversations: dict[tuple[str, str], list[dict]] = {}

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(
            headers={"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=2000),
            timeout=httpx.Timeout(120.0, connect=10.0),
        )
    return _client


def frame(kind: str, value) -> bytes:
    return b"data: " + orjson.dumps({"type": kind, "value": value}) + b"\n\n"


async def _json(send, status: int, value) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(value)})


async def _read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _relay(send, key: tuple[str, str], prompt: str) -> None:
    chat = conversations.setdefault(key, [])
    before = list(chat)
    started = time.time()
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await send(
        {"type": "http.response.body", "body": frame("chat_history", before), "more_body": True}
    )
    messages = [{"role": m["role"], "content": m["content"]} for m in before]
    messages.append({"role": "user", "content": prompt})
    request = orjson.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": True})
    parts: list[str] = []
    buf = b""
    async with client().stream("POST", BASE_URL + "/chat/completions", content=request) as r:
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
    item = {"role": "assistant", "content": "".join(parts), "type": "text"}
    chat.append({"role": "user", "content": prompt, "type": "text"})
    chat.append(item)
    end = {"chat_item": item, "mode": "relay", "seconds": time.time() - started}
    await send({"type": "http.response.body", "body": frame("end", end), "more_body": False})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _client is not None:
                    await _client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
    if len(parts) != 3:
        await _json(send, 404, {"detail": "Not Found"})
        return
    route, project_id, app_id = parts
    key = (project_id, app_id)
    method = scope["method"]
    if route == "response" and method == "POST":
        try:
            prompt = orjson.loads(await _read_body(receive))["prompt"]
            if not isinstance(prompt, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await _json(send, 422, {"detail": 'body must be {"prompt": str}'})
            return
        await _relay(send, key, prompt)
    elif route == "create" and method == "POST":
        await _read_body(receive)
        conversations.setdefault(key, [])
        await _json(send, 200, app_id)
    elif route == "history" and method == "GET":
        await _json(send, 200, conversations.get(key, []))
    else:
        await _json(send, 405, {"detail": "Method Not Allowed"})
