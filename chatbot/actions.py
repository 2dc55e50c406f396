"""The Burr actions of the chatbot graph.

Plain functions declaring what they read and write, as Burr intends. Collaborators (the
chat model, texts, pacing) are bound in ``graph.py``, so each action can be run alone in
a test with a fake. Chat history is an immutable ``ChatHistory``, extended with ``plus``
and swapped in with
``state_ops.replace``: ``State.append`` and ``State.update`` would deep-copy it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from burr.core import State
from burr.core.action import action, streaming_action

from chatbot.chat_items import as_history, assistant_item, user_item
from chatbot.llm.chat_model import ChatModel
from chatbot.modes import ModelMode, parse_mode, reply_item_type
from chatbot.prompts import classifier_messages, responder_messages
from chatbot.safety import is_safe
from chatbot.state_ops import replace
from chatbot.text import split_tokens

StreamStep = AsyncGenerator[tuple[dict, State | None], None]


@action(reads=["chat_history"], writes=["chat_history", "prompt"])
def process_prompt(state: State, prompt: str) -> tuple[dict, State]:
    item = user_item(prompt)
    history = as_history(state["chat_history"]).plus(item)
    return {"chat_item": item}, replace(state, prompt=prompt, chat_history=history)


@action(reads=["prompt"], writes=["safe"])
def check_safety(state: State) -> tuple[dict, State]:
    safe = is_safe(state["prompt"])
    return {"safe": safe}, state.update(safe=safe)


@action(reads=["prompt"], writes=["mode"])
async def decide_mode(state: State, model: ChatModel) -> tuple[dict, State]:
    answer = await model.complete(classifier_messages(state["prompt"]))
    mode = parse_mode(answer)
    return {"mode": mode, "classifier_answer": answer}, state.update(mode=mode)


@streaming_action(reads=["chat_history"], writes=["chat_history", "response"])
async def respond_with_model(
    state: State, model: ChatModel, mode: ModelMode, max_context_messages: int
) -> StreamStep:
    """Stream the chat model's reply for ``mode``, with the conversation so far as context."""
    messages = responder_messages(mode, state["chat_history"], max_context_messages)
    parts: list[str] = []
    async for text in model.stream(messages):
        parts.append(text)
        yield {"delta": text}, None
    item = assistant_item("".join(parts), reply_item_type(mode))
    history = as_history(state["chat_history"]).plus(item)
    yield {"response": item}, replace(state, response=item, chat_history=history)


@streaming_action(reads=["chat_history"], writes=["chat_history", "response"])
async def respond_with_text(state: State, text: str, pace_s: float) -> StreamStep:
    """Stream a fixed reply word by word, so canned turns look like every other turn."""
    for index, piece in enumerate(split_tokens(text)):
        if index and pace_s:
            await asyncio.sleep(pace_s)
        yield {"delta": piece}, None
    item = assistant_item(text)
    history = as_history(state["chat_history"]).plus(item)
    yield {"response": item}, replace(state, response=item, chat_history=history)
