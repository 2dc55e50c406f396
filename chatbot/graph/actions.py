"""The Burr actions of the chatbot graph.

Plain functions declaring what they read and write, as Burr intends. Collaborators (the
chat model, texts, pacing) are bound in ``graph.py``, so each action can be run alone in
a test with a fake. Chat history is an immutable ``ChatHistory``, extended with ``plus``
and swapped in with
``state_ops.replace``: ``State.append`` and ``State.update`` would deep-copy it.

A turn's token account lives in state as ``usage`` (a plain dict, so it stores and tracks
as JSON): ``process_prompt`` opens it at zero, the classifier and the reply add what the
upstream reported, and the responder's result carries the total as a ``Usage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from burr.core import State
from burr.core.action import action, streaming_action

from chatbot.domain.chat_items import as_history, assistant_item, user_item
from chatbot.domain.events import Usage
from chatbot.domain.modes import ModelMode, parse_mode, reply_item_type
from chatbot.domain.text import split_tokens
from chatbot.graph.prompts import classifier_messages, responder_messages
from chatbot.graph.safety import is_safe
from chatbot.graph.state_ops import replace
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.usage import StreamReport

StreamStep = AsyncGenerator[tuple[dict, State | None], None]


_NO_USAGE: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}


def _usage(state: State) -> Usage:
    tokens = state.get("usage") or _NO_USAGE
    return Usage(tokens["prompt_tokens"], tokens["completion_tokens"])


def _as_state(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


@action(
    reads=["chat_history", "instructions"],
    writes=["chat_history", "prompt", "instructions", "usage"],
)
def process_prompt(
    state: State, prompt: str, instructions: str | None = None
) -> tuple[dict, State]:
    """Take the prompt; ``instructions`` (a client's system prompt) replace the stored ones.

    Left out (as the chat UI and Burr's page do), the conversation keeps its instructions.
    """
    item = user_item(prompt)
    history = as_history(state["chat_history"]).plus(item)
    if instructions is None:
        instructions = state.get("instructions")
    return {"chat_item": item}, replace(
        state,
        prompt=prompt,
        chat_history=history,
        instructions=instructions,
        usage=_NO_USAGE,
    )


@action(reads=["prompt"], writes=["safe"])
def check_safety(state: State) -> tuple[dict, State]:
    safe = is_safe(state["prompt"])
    return {"safe": safe}, state.update(safe=safe)


@action(reads=["prompt", "usage"], writes=["mode", "usage"])
async def decide_mode(state: State, model: ChatModel) -> tuple[dict, State]:
    """Classify the prompt alone: a client's instructions are for the reply, not the router."""
    spent: list[Usage] = []
    answer = await model.complete(classifier_messages(state["prompt"]), on_usage=spent.append)
    mode = parse_mode(answer)
    usage = sum(spent, _usage(state))
    return {"mode": mode, "classifier_answer": answer}, state.update(
        mode=mode, usage=_as_state(usage)
    )


@streaming_action(
    reads=["chat_history", "instructions", "usage"],
    writes=["chat_history", "response", "usage"],
)
async def respond_with_model(
    state: State,
    model: ChatModel,
    mode: ModelMode,
    max_context_messages: int,
    sampling: Mapping[str, Any] | None = None,
) -> StreamStep:
    """Stream the chat model's reply for ``mode``, with the conversation so far as context.

    ``sampling`` is a turn's input (temperature, max_tokens, stop...) for this call only.
    """
    messages = responder_messages(
        mode, state["chat_history"], max_context_messages, state.get("instructions")
    )
    report = StreamReport()
    parts: list[str] = []
    async for text in model.stream(messages, options=sampling, report=report):
        parts.append(text)
        yield {"delta": text}, None
    item = assistant_item("".join(parts), reply_item_type(mode))
    history = as_history(state["chat_history"]).plus(item)
    usage = _usage(state) + report.usage if report.usage is not None else _usage(state)
    result = {"response": item, "usage": usage, "finish_reason": report.finish_reason or "stop"}
    yield result, replace(state, response=item, chat_history=history, usage=_as_state(usage))


@streaming_action(reads=["chat_history", "usage"], writes=["chat_history", "response"])
async def respond_with_text(state: State, text: str, pace_s: float) -> StreamStep:
    """Stream a fixed reply word by word, so canned turns look like every other turn."""
    for index, piece in enumerate(split_tokens(text)):
        if index and pace_s:
            await asyncio.sleep(pace_s)
        yield {"delta": piece}, None
    item = assistant_item(text)
    history = as_history(state["chat_history"]).plus(item)
    result = {"response": item, "usage": _usage(state)}
    yield result, replace(state, response=item, chat_history=history)
