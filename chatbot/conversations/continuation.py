"""Where a stateless client's message list goes on: which conversation, which branch.

OpenAI-style clients resend the whole conversation with every request. The server keeps
conversations too, so each request has to be matched to one. What a client holds is its
*view* of a history (``chatbot.domain.client_view``): no error items, no unanswered prompt.

1. The conversation the client names (a header or the body): its shown branch, if its
   stored history is what the client sent (or the client sent no earlier messages at
   all), or one did not exist yet (it starts from the client's messages).
2. Otherwise, in that conversation, a *branch* (``chatbot.domain.branch_points``): a client
   whose earlier messages are the history before one of the shown branch's turns re-asks
   that turn, as clients do to regenerate a reply (the same prompt again) or to edit a
   message (another prompt): the conversation branches there, as ``POST /regenerate`` and
   ``POST /edit`` would, and shows the new branch. Earlier messages that hold another
   branch of the conversation, up to one of its turns or to its end, show that branch
   and branch (or continue) it: the client walked to another version.
3. Otherwise the conversation (or branch) whose stored history is exactly the client's
   earlier messages, found by a digest kept in the database (any process can find it); a
   branch that is not shown is shown.
4. Otherwise a new conversation, seeded with the client's earlier messages.

A branch starts where the server stored a turn's end: the part of a conversation a
client gave whole (its seed) has no such point inside, and a client without earlier
messages continues (1), so neither is re-asked by (2).

A client that names a conversation but sends earlier messages that the conversation
never held (an assistant message edited on the client, say) therefore goes on in a new
conversation that starts from the client's own messages, and the named one stays as it
was. The next request of that client, naming it again, finds the new one by (3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.branch_points import BranchPoint, branch_for_resent
from chatbot.domain.chat_items import ChatItem
from chatbot.domain.client_view import client_view, continues, history_digest

if TYPE_CHECKING:
    from chatbot.turns.live_turn import LiveTurn

__all__ = [
    "ConversationFinder",
    "begin_continuation",
    "client_view",
    "continues",
    "history_digest",
]


class ConversationFinder(Protocol):
    """What finding a client's conversation needs: the conversation service's reads and
    turns, for one request's prompt and options (``chatbot.conversations.service``)."""

    async def begin(self, conversation_id: str) -> LiveTurn:
        """Take the conversation's lease and load its shown branch (a conversation with
        nothing stored starts from the client's earlier messages)."""
        ...

    async def begin_branch(self, conversation_id: str, point: BranchPoint) -> LiveTurn | None:
        """Take the lease and start a branch of the shown branch at ``point``; None when
        the shown branch no longer has that item (it changed since it was read)."""
        ...

    async def branch_history(self, branch_id: str) -> Sequence[ChatItem]:
        """The latest stored history of a branch (a Burr app id)."""
        ...

    async def show(self, branch_id: str) -> None:
        """Make a branch (a Burr app id) the one its conversation shows."""
        ...

    async def find(self, earlier: Sequence[ChatItem]) -> str | None:
        """The branch (a Burr app id) whose latest history is ``earlier``, if any."""
        ...

    async def find_branch(self, conversation_id: str, earlier: Sequence[ChatItem]) -> str | None:
        """A branch of the conversation with ``earlier`` as the history before one of its
        turns (or after its last), if any."""
        ...


async def begin_continuation(
    prompt: str,
    earlier: Sequence[ChatItem],
    named: str | None,
    conversations: ConversationFinder,
    new_id: Callable[[], str],
) -> LiveTurn:
    """Begin the turn where the client goes on (see the module's rules).

    Every turn is checked under its conversation's lease: a conversation that moved on
    between the look-up and the lease is not continued. What beginning raises (busy,
    overloaded) propagates: a client that named a busy conversation hears so.
    """

    async def accepted(turn: LiveTurn | None) -> LiveTurn | None:
        if turn is None or continues(turn.history, earlier):
            return turn
        await turn.aclose()  # not this one: nothing was stored, the lease is released
        return None

    async def on_branch(branch_id: str) -> LiveTurn | None:
        """Go on in a branch that is not shown: show it, then continue or branch it."""
        history = await conversations.branch_history(branch_id)
        holds_all = continues(history, earlier)
        point = None if holds_all else branch_for_resent(history, earlier, prompt)
        if not holds_all and point is None:
            return None
        await conversations.show(branch_id)
        conversation = conversation_of(branch_id)
        if point is None:
            return await accepted(await conversations.begin(conversation))
        return await accepted(await conversations.begin_branch(conversation, point))

    if named is not None:
        turn = await conversations.begin(named)
        if continues(turn.history, earlier):
            return turn
        shown = turn.history
        await turn.aclose()
        point = branch_for_resent(shown, earlier, prompt)
        if point is not None:
            turn = await accepted(await conversations.begin_branch(named, point))
            if turn is not None:
                return turn
        other = await conversations.find_branch(named, earlier) if earlier else None
        if other is not None:
            turn = await on_branch(other)
            if turn is not None:
                return turn
    if earlier:
        found = await conversations.find(earlier)
        if found is not None and conversation_of(found) != named:
            turn = await accepted(await conversations.begin(conversation_of(found)))
            if turn is None:
                turn = await on_branch(found)
            if turn is not None:
                return turn
    return await conversations.begin(new_id())
