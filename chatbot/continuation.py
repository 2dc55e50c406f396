"""Which conversation a stateless client's message list continues.

OpenAI-style clients resend the whole conversation with every request. The server keeps
conversations too, so each request has to be matched to one:

1. the conversation the client names (a header or the body), if its stored history is
   what the client sent (or the client sent no earlier messages at all);
2. otherwise the conversation whose stored history is exactly the client's earlier
   messages, found by a digest kept in the database (any process can find it);
3. otherwise a new conversation, seeded with the client's earlier messages.

A client that names a conversation but sends earlier messages that contradict its history
(an edited or regenerated message) therefore forks: its request goes on in a new
conversation that starts from the client's own messages, and the original stays as it
was. The next request of that client, naming the original again, finds the fork by (2).

What counts as the history a client holds is its *view*: user and assistant messages in
order, without the server's error items, and without a prompt that never got an answer
(a failed turn: the client got an error, not a message, and will send that prompt again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import orjson

from chatbot.chat_items import ChatItem

if TYPE_CHECKING:
    from chatbot.live_turn import LiveTurn

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


async def begin_continuation(
    earlier: Sequence[ChatItem],
    named: str | None,
    *,
    begin: Callable[[str], Awaitable[LiveTurn]],
    find: Callable[[Sequence[ChatItem]], Awaitable[str | None]],
    new_id: Callable[[], str],
) -> LiveTurn:
    """Begin the turn in the conversation the client continues (see the module's rules).

    ``begin`` takes a conversation's lease and loads it (seeded with ``earlier`` if it has
    no history); the history is checked under that lease, so a conversation that moved on
    between the look-up and the lease is not continued. What ``begin`` raises (busy,
    overloaded) propagates: a client that named a busy conversation hears so.
    """
    async def accepted(app_id: str) -> LiveTurn | None:
        turn = await begin(app_id)
        if continues(turn.history, earlier):
            return turn
        await turn.aclose()  # not this one: nothing was stored, the lease is released
        return None

    if named is not None:
        turn = await accepted(named)
        if turn is not None:
            return turn
    if earlier:
        found = await find(earlier)
        if found is not None and found != named:
            turn = await accepted(found)
            if turn is not None:
                return turn
    return await begin(new_id())
