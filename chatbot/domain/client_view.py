"""What a stateless client holds of a conversation: its *view* of the stored items.

Clients that resend the conversation (the OpenAI-compatible API, the AI SDK) have user
and assistant messages in order, without the server's error items, and without a prompt
that never got an answer (a failed turn: the client got an error, not a message, and will
send that prompt again). Stored histories are matched to what a client sent by comparing
views, in memory or by a digest the stores keep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from chatbot.domain.chat_items import ChatItem

Exchange = tuple[str, str]  # (role, content)


def client_view(items: Sequence[ChatItem]) -> list[Exchange]:
    """The messages of ``items`` a client holds: answered prompts and the replies to them."""
    view: list[Exchange] = []
    pending_prompt: Exchange | None = None
    for item in items:
        if item["type"] == "error":
            continue
        if item["role"] == "user":
            pending_prompt = ("user", item["content"])
            continue
        if pending_prompt is not None:
            view.append(pending_prompt)
            pending_prompt = None
        view.append(("assistant", item["content"]))
    return view


def history_digest(items: Sequence[ChatItem]) -> str:
    """A digest of the client's view of ``items``: equal views, equal digests."""
    return hashlib.sha256(orjson.dumps(client_view(items))).hexdigest()


def continues(history: Sequence[ChatItem], earlier: Sequence[ChatItem]) -> bool:
    """Whether a client that sent ``earlier`` holds the conversation ``history``."""
    return not earlier or client_view(history) == client_view(earlier)
