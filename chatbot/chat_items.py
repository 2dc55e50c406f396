"""The chat item: one message of a conversation, as stored in Burr state and sent to clients.

Items are plain dicts (not models) because they live inside Burr state, which is
serialised on every step; a dict costs nothing to copy or dump.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Role = Literal["user", "assistant"]
ItemType = Literal["text", "code", "error", "image"]


class ChatItem(TypedDict):
    role: Role
    content: str
    type: ItemType
    # Present (and true) only on an assistant reply cut short by a disconnect or a stop.
    interrupted: NotRequired[bool]


def user_item(content: str) -> ChatItem:
    return {"role": "user", "content": content, "type": "text"}


def assistant_item(content: str, item_type: ItemType = "text") -> ChatItem:
    return {"role": "assistant", "content": content, "type": item_type}


def error_item(message: str) -> ChatItem:
    return {"role": "assistant", "content": message, "type": "error"}


def interrupted_item(content: str, item_type: ItemType = "text") -> ChatItem:
    return {"role": "assistant", "content": content, "type": item_type, "interrupted": True}
