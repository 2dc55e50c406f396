"""The Burr graph end to end in-process, with the offline model and a temporary SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from chatbot.domain.events import TurnCompleted
from chatbot.graph.builder import RESPONSE_ACTIONS, build_graph
from chatbot.llm.chat_model import ChatModel
from chatbot.runtime import Chatbot
from chatbot.settings import Settings


@pytest.fixture
async def bot() -> AsyncIterator[Chatbot]:
    chatbot = await Chatbot.start(Settings(_env_file=None, offline_pace_ms=0, canned_pace_ms=0))
    try:
        yield chatbot
    finally:
        await chatbot.aclose()


def offline_requests(bot: Chatbot) -> int:
    return bot.client._client._transport.stats.requests


async def run_turn(
    bot: Chatbot, prompt: str, app_id: str = "conv"
) -> tuple[TurnCompleted, list[str]]:
    turn = await bot.conversations.begin_turn("tests", app_id, prompt)
    deltas = [event async for event in turn.events() if type(event) is str]
    assert isinstance(turn.outcome, TurnCompleted), turn.outcome
    return turn.outcome, deltas


@pytest.mark.parametrize(
    ("prompt", "action", "item_type"),
    [
        ("Write a Python function that computes a factorial", "generate_code", "code"),
        ("What is a finite state machine?", "answer_question", "text"),
        ("Write a poem about the harbour at night", "generate_poem", "text"),
        ("hmm", "prompt_for_more", "text"),
        ("tell me something unsafe", "unsafe_response", "text"),
    ],
)
async def test_each_prompt_kind_reaches_its_action(
    bot: Chatbot, prompt: str, action: str, item_type: str
) -> None:
    end, deltas = await run_turn(bot, prompt)
    assert end.mode == action
    assert end.item["type"] == item_type
    assert len(deltas) > 1, "every response action streams, canned ones included"
    assert "".join(deltas) == end.item["content"]


async def test_unsafe_prompt_never_reaches_the_classifier(bot: Chatbot) -> None:
    before = offline_requests(bot)
    end, _ = await run_turn(bot, "this is unsafe")
    assert end.mode == "unsafe_response"
    assert offline_requests(bot) == before


async def test_safe_prompt_makes_one_classifier_and_one_chat_call(bot: Chatbot) -> None:
    before = offline_requests(bot)
    await run_turn(bot, "What is Burr?")
    assert offline_requests(bot) == before + 2


async def test_history_grows_by_exactly_two_items_a_turn(bot: Chatbot) -> None:
    prompts = ["What is Burr?", "Write a poem about graphs", "ok", "write python code for fizzbuzz"]
    for turn_number, prompt in enumerate(prompts, start=1):
        end, _ = await run_turn(bot, prompt)
        history = await bot.conversations.history("tests", "conv")
        assert len(history) == 2 * turn_number
        assert history[-2] == {"role": "user", "content": prompt, "type": "text"}
        assert history[-1] == end.item


async def test_conversations_are_independent(bot: Chatbot) -> None:
    await run_turn(bot, "What is Burr?", app_id="one")
    await run_turn(bot, "Write a poem about rain", app_id="two")
    one = await bot.conversations.history("tests", "one")
    two = await bot.conversations.history("tests", "two")
    assert [i["content"] for i in one if i["role"] == "user"] == ["What is Burr?"]
    assert [i["content"] for i in two if i["role"] == "user"] == ["Write a poem about rain"]


def test_graph_has_exactly_the_designed_actions_and_transitions() -> None:
    graph = build_graph(
        # A client that is never called: building the graph makes no request.
        ChatModel(
            openai.AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1"),
            classifier_model="c",
            chat_model="m",
        ),
        max_context_messages=10,
        canned_pace_s=0,
    )
    names = {action.name for action in graph.actions}
    assert names == {"prompt", "check_safety", "decide_mode", *RESPONSE_ACTIONS}
    edges = {(t.from_.name, t.to.name) for t in graph.transitions}
    assert edges == {
        ("prompt", "check_safety"),
        ("check_safety", "decide_mode"),
        ("check_safety", "unsafe_response"),
        ("decide_mode", "generate_code"),
        ("decide_mode", "answer_question"),
        ("decide_mode", "generate_poem"),
        ("decide_mode", "prompt_for_more"),
        *((action, "prompt") for action in RESPONSE_ACTIONS),
    }
    streaming = {action.name for action in graph.actions if action.streaming}
    assert streaming == set(RESPONSE_ACTIONS)
