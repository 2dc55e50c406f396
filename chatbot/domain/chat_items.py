"""The chat item: one message of a conversation, as stored in Burr state and sent to clients.

Items are plain dicts (not models) because they live inside Burr state, which is
serialised on every step; a dict costs nothing to copy or dump.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NoReturn, NotRequired, TypedDict

Role = Literal["user", "assistant"]
ItemType = Literal["text", "code", "error", "image"]


class ChatItem(TypedDict):
    role: Role
    content: str
    type: ItemType
    # Present (and true) only on an assistant reply cut short by a disconnect or a stop.
    interrupted: NotRequired[bool]


TITLE_MAX_CHARS = 80


def summarise(history: Iterable[ChatItem]) -> tuple[str, int]:
    """A conversation's title (its first prompt, trimmed) and turn count (user messages)."""
    title = ""
    turns = 0
    for item in history:
        if item["role"] == "user":
            if not title:
                title = " ".join(item["content"].split())[:TITLE_MAX_CHARS]
            turns += 1
    return title, turns


def user_item(content: str) -> ChatItem:
    return {"role": "user", "content": content, "type": "text"}


def assistant_item(content: str, item_type: ItemType = "text") -> ChatItem:
    return {"role": "assistant", "content": content, "type": item_type}


def error_item(message: str) -> ChatItem:
    return {"role": "assistant", "content": message, "type": "error"}


def interrupted_item(content: str, item_type: ItemType = "text") -> ChatItem:
    return {"role": "assistant", "content": content, "type": item_type, "interrupted": True}


class ChatHistory(list[ChatItem]):
    """A conversation's items, immutable once built: extend with ``plus``, never in place.

    Burr deep-copies a state value before every update that replaces it, so with a plain
    list each step of each turn copied the whole conversation. Being immutable, a
    history is its own deep copy. It is still a ``list`` to JSON encoders and pydantic;
    the mutating methods raise, so code that tries (``State.append`` included) fails
    loudly instead of silently changing states that share the history.
    """

    __slots__ = ()

    def plus(self, *items: ChatItem) -> ChatHistory:
        return ChatHistory([*self, *items])

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatHistory:
        return self

    def __copy__(self) -> ChatHistory:
        return self

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("ChatHistory is immutable: build a new one with .plus(item)")

    append = extend = insert = remove = pop = clear = sort = reverse = _immutable  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _immutable  # type: ignore[assignment]


def as_history(items: Iterable[ChatItem] | None) -> ChatHistory:
    """Wrap stored or client-supplied items (plain lists) as a ``ChatHistory``."""
    if isinstance(items, ChatHistory):
        return items
    return ChatHistory(items or ())
