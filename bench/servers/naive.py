"""Baseline 1, the naive relay: the streaming proxy a user would write first.

FastAPI, one shared ``openai.AsyncOpenAI`` client, one streaming call per turn,
the contract's frames (``chat_history``, ``delta``..., ``end``) through a
``StreamingResponse``. The conversation lives in a dict in memory: no graph, no
classifier, no persistence, no tracking. Reads ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` like the SDK does.

Run: ``uvicorn bench.servers.naive:app --host 127.0.0.1 --port P``
"""

from __future__ import annotations

import json
import time

import openai
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

PREFIX = "/api/v0/streaming_chatbot"

app = FastAPI(title="naive relay")
client = openai.AsyncOpenAI()
conversations: dict[tuple[str, str], list[dict]] = {}


class PromptInput(BaseModel):
    prompt: str


def sse(frame: dict) -> str:
    return f"data: {json.dumps(frame)}\n\n"


@app.post(PREFIX + "/create/{project_id}/{app_id}")
async def create(project_id: str, app_id: str) -> str:
    conversations.setdefault((project_id, app_id), [])
    return app_id


@app.get(PREFIX + "/history/{project_id}/{app_id}")
async def history(project_id: str, app_id: str) -> list[dict]:
    return conversations.get((project_id, app_id), [])


@app.post(PREFIX + "/response/{project_id}/{app_id}")
async def response(project_id: str, app_id: str, body: PromptInput) -> StreamingResponse:
    chat = conversations.setdefault((project_id, app_id), [])
    before = list(chat)
    started = time.time()

    async def events():
        yield sse({"type": "chat_history", "value": before})
        messages = [{"role": m["role"], "content": m["content"]} for m in before]
        messages.append({"role": "user", "content": body.prompt})
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True
        )
        parts = []
        async for chunk in stream:
            if not chunk.choices:
                continue
            text = chunk.choices[0].delta.content
            if text:
                parts.append(text)
                yield sse({"type": "delta", "value": text})
        item = {"role": "assistant", "content": "".join(parts), "type": "text"}
        chat.append({"role": "user", "content": body.prompt, "type": "text"})
        chat.append(item)
        yield sse(
            {
                "type": "end",
                "value": {"chat_item": item, "mode": "relay", "seconds": time.time() - started},
            }
        )

    return StreamingResponse(events(), media_type="text/event-stream")
