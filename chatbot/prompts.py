"""What the model is told: the classifier's instruction, each mode's system prompt, and context.

The offline model reads these same prompts (it recognises the classifier instruction
and each mode's wording), so changing them here changes both paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from chatbot.chat_items import ChatItem
from chatbot.modes import Mode

CLASSIFIER_LABELS: Final = ("generate_code", "answer_question", "generate_poem", "unknown")

CLASSIFIER_SYSTEM: Final = (
    "You route messages for a chatbot. Classify the user's latest message into exactly one "
    "of these labels: generate_code (they want code written or fixed), answer_question "
    "(they ask a question or want an explanation), generate_poem (they want a poem or "
    "verse), unknown (anything else, or too vague to act on). "
    "Reply with the label only."
)

RESPONDER_SYSTEM: Final[dict[Mode, str]] = {
    "generate_code": (
        "You are a programming assistant. Reply with code only: a single fenced Markdown code "
        "block with a language tag, and comments inside the code where they help. "
        "No prose before or after the block."
    ),
    "answer_question": (
        "You are a helpful assistant. Answer the user's question accurately and concisely, "
        "using Markdown where it helps. Say so when you are not sure."
    ),
    "generate_poem": (
        "You are a poet. Write a poem in response to the user's request. Reply with the poem "
        "only, one verse line per line, stanzas separated by a blank line."
    ),
}


def classifier_messages(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": CLASSIFIER_SYSTEM},
        {"role": "user", "content": prompt},
    ]


def responder_messages(
    mode: Mode, history: Sequence[ChatItem], max_messages: int
) -> list[dict[str, str]]:
    """The mode's system prompt followed by the conversation so far (latest prompt last).

    Error items are the server talking, not the model, so they are left out; an
    interrupted reply is kept, since the model did say it.
    """
    turns = [item for item in history if item["type"] != "error"][-max_messages:]
    messages = [{"role": "system", "content": RESPONDER_SYSTEM[mode]}]
    messages.extend({"role": item["role"], "content": item["content"]} for item in turns)
    return messages
