"""What a ``useChat`` request asks for: the prompt, and whether it replaces the last turn.

The server keeps each conversation's history itself (in Burr state), so the messages a
client sends are not history to trust: the last user message is the prompt, and the
number of user messages tells which turn the client means when it asks to regenerate a
reply or edit a message. Only the last turn can be replaced; an earlier one would need
the conversation forked, which is refused rather than guessed.
"""

from __future__ import annotations

from server.errors import ApiError
from server.schemas import UIChatRequestIn, UIMessageIn


def prompt_of(messages: list[UIMessageIn]) -> str:
    """The text of the last message, which must be the user's."""
    last = messages[-1]
    if last.role != "user":
        raise ApiError(
            422,
            "last_message_not_from_user",
            f"The last message must be the user's, not the {last.role}'s: it is the prompt.",
        )
    if any(part.type == "file" for part in last.parts):
        raise ApiError(422, "unsupported_part", "This chatbot reads text only, not files.")
    return "\n".join(part.text for part in last.parts if part.type == "text" and part.text)


def replaces_last_turn(request: UIChatRequestIn, stored_prompts: int) -> bool:
    """True when the request regenerates (or edits) the conversation's last turn.

    A plain new message never replaces. A regenerate, or a new message with a
    ``messageId`` (an edited user message), replaces the last turn when the client's
    prompts match the stored ones; when the client has one prompt more, that prompt was
    never stored (its first request failed before the turn began) and it simply runs.
    """
    if request.trigger == "submit-message" and request.messageId is None:
        return False
    client_prompts = sum(1 for message in request.messages if message.role == "user")
    if client_prompts == stored_prompts + 1:
        return False
    if client_prompts == stored_prompts and stored_prompts > 0:
        return True
    raise ApiError(
        409,
        "not_the_last_turn",
        "Only the conversation's last reply can be regenerated, and only its last message "
        f"edited: the request names turn {client_prompts} of {stored_prompts}.",
    )
