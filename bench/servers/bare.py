"""The bare ASGI shell the two hand-written relays share (``lean`` and ``floor``).

No framework routing and no pydantic: the three routes of the contract matched by
hand, conversations in a dict, and the once-per-turn frames (``chat_history``, ``end``)
written here. What differs between the relays is only the per-token part, the
``Relay`` coroutine: it streams the upstream reply for a request body, sends one
``delta`` frame per token itself, and returns the whole reply text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

PREFIX = "/api/v0/streaming_chatbot/"
BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1").rstrip("/")
API_KEY = os.environ.get("OPENAI_API_KEY", "")
COMPLETIONS_URL = BASE_URL + "/chat/completions"
UPSTREAM_HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Relay = Callable[[Send, bytes], Awaitable[str]]
"""Stream the upstream reply to the request body ``bytes``, one delta frame per token
through ``send``; return the whole reply."""


def frame(kind: str, value: Any) -> bytes:
    return b"data: " + orjson.dumps({"type": kind, "value": value}) + b"\n\n"


def upstream_request(history: list[dict], prompt: str) -> bytes:
    messages = [{"role": m["role"], "content": m["content"]} for m in history]
    messages.append({"role": "user", "content": prompt})
    return orjson.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": True})


async def _json(send: Send, status: int, value: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(value)})


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def bare_app(
    relay: Relay,
    on_startup: Callable[[], Awaitable[None]],
    on_shutdown: Callable[[], Awaitable[None]],
) -> Callable[[dict, Receive, Send], Awaitable[None]]:
    """The ASGI app serving ``create``, ``history`` and ``response`` around ``relay``."""
    conversations: dict[tuple[str, str], list[dict]] = {}

    async def respond(send: Send, key: tuple[str, str], prompt: str) -> None:
        chat = conversations.setdefault(key, [])
        before = list(chat)
        started = time.time()
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send(
            {
                "type": "http.response.body",
                "body": frame("chat_history", before),
                "more_body": True,
            }
        )
        text = await relay(send, upstream_request(before, prompt))
        item = {"role": "assistant", "content": text, "type": "text"}
        chat.append({"role": "user", "content": prompt, "type": "text"})
        chat.append(item)
        end = {"chat_item": item, "mode": "relay", "seconds": time.time() - started}
        await send({"type": "http.response.body", "body": frame("end", end), "more_body": False})

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
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
            await respond(send, key, prompt)
        elif route == "create" and method == "POST":
            await _read_body(receive)
            conversations.setdefault(key, [])
            await _json(send, 200, app_id)
        elif route == "history" and method == "GET":
            await _json(send, 200, conversations.get(key, []))
        else:
            await _json(send, 405, {"detail": "Method Not Allowed"})

    return app
