"""What a ``useChat`` request asks for: the prompt, and whether it branches the conversation.

The server keeps each conversation's history itself (in Burr state), so the messages a
client sends are not history to trust: the last user message is the prompt, and the
number of user messages tells which turn the client means when it asks to regenerate a
reply or edit a message. Any turn can be re-asked: the conversation branches there
(``chatbot.domain.branch_points``), and the turns after it stay in the branch it leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatbot.domain.branch_points import BranchPoint, branch_for_turn, turn_starts
from chatbot.domain.chat_items import ChatItem
from server.errors import ApiError
from server.schemas import UIChatRequestIn, UIMessageIn


def prompt_of(messages: list[UIMessageIn]) -> str:
    """The text of the last message, which must be the user's (a user message has text
    and no file: ``UIMessageIn`` checks that)."""
    last = messages[-1]
    if last.role != "user":
        raise ApiError(
            422,
            "last_message_not_from_user",
            f"The last message must be the user's, not the {last.role}'s: it is the prompt.",
        )
    return "\n".join(part.text for part in last.parts if part.type == "text" and part.text)


def branch_point(
    request: UIChatRequestIn, stored: Sequence[ChatItem], prompt: str
) -> BranchPoint | None:
    """The branch a regenerate or an edit asks for, or None for a turn that just runs.

    A plain new message never branches. A regenerate, or a new message with a
    ``messageId`` (an edited user message), re-asks the client's ``n``-th turn, ``n``
    being its number of user messages: the stored turn ``n`` is regenerated (same prompt)
    or edited (another one) as a branch. When the client has one prompt more than the
    stored turns, that prompt was never stored (its first request failed before the turn
    began) and it simply runs. More than that is a turn the conversation does not have.
    """
    if request.trigger == "submit-message" and request.messageId is None:
        return None
    client_prompts = sum(1 for message in request.messages if message.role == "user")
    starts = turn_starts(stored)
    if client_prompts == len(starts) + 1:
        return None
    if client_prompts <= len(starts):
        return branch_for_turn(stored, starts[client_prompts - 1], prompt)
    raise ApiError(
        409,
        "turn_not_found",
        "The request regenerates or edits turn "
        f"{client_prompts}, but the conversation has {len(starts)}.",
    )
