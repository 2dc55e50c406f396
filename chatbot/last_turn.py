"""The conversation as it was before its last turn: what a regenerated reply starts from.

A turn's items begin with the user's prompt and end before the next prompt (the reply,
or a partial reply and an error item). Dropping everything from the last user item on
leaves the history the replaced reply never touched, so the new reply is written as if
the old one had not existed: the model never sees it as context.
"""

from __future__ import annotations

from collections.abc import Sequence

from burr.core import State

from chatbot.chat_items import ChatHistory, ChatItem, as_history
from chatbot.state_ops import replace


def prompts_in(history: Sequence[ChatItem]) -> int:
    """How many turns the history holds (one user item each)."""
    return sum(1 for item in history if item["role"] == "user")


def history_before_last_turn(history: Sequence[ChatItem]) -> ChatHistory:
    for index in range(len(history) - 1, -1, -1):
        if history[index]["role"] == "user":
            return ChatHistory(history[:index])
    return as_history(history)


def state_before_last_turn(state: State) -> State:
    """``state`` with its last turn taken out of the history (the other keys are rewritten
    by the next turn's own steps)."""
    history = as_history(state.get("chat_history"))
    return replace(state, chat_history=history_before_last_turn(history))
