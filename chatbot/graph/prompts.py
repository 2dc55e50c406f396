"""What the model is told: the classifier's instruction, each mode's system prompt, and context.

Every system prompt opens with a task marker line (``[task: generate_poem]``). A real
model reads it as a plain heading; the offline model keys on it alone, never on the
prose, so rewording a prompt here cannot silently change what the offline model does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from chatbot.domain.chat_items import ChatItem
from chatbot.domain.modes import CLASSIFIER_LABELS, CLASSIFY_TASK, ModelMode, task_marker

CLASSIFIER_SYSTEM: Final = (
    f"{task_marker(CLASSIFY_TASK)}\n"
    "You route messages for a chatbot. Classify the user's latest message into exactly one "
    "of these labels: generate_code (they want code written or fixed), answer_question "
    "(they ask a question or want an explanation), generate_poem (they want a poem or "
    "verse), unknown (anything else, or too vague to act on). "
    "Reply with the label only."
)
assert all(label in CLASSIFIER_SYSTEM for label in CLASSIFIER_LABELS)

_RESPONDER_PROSE: Final[dict[ModelMode, str]] = {
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
RESPONDER_SYSTEM: Final[dict[ModelMode, str]] = {
    mode: f"{task_marker(mode)}\n{prose}" for mode, prose in _RESPONDER_PROSE.items()
}


def classifier_messages(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": CLASSIFIER_SYSTEM},
        {"role": "user", "content": prompt},
    ]


def responder_messages(
    mode: ModelMode,
    history: Sequence[ChatItem],
    max_messages: int,
    instructions: str | None = None,
) -> list[dict[str, str]]:
    """The mode's system prompt followed by the conversation so far (latest prompt last).

    ``instructions`` are a client's own system prompt (the OpenAI-compatible API keeps
    them per conversation); they follow ours, so the task marker stays first. Error
    items are the server talking, not the model, so they are left out; an interrupted
    reply is kept, since the user read it and may refer to it.
    """
    turns = [item for item in history if item["type"] != "error"][-max_messages:]
    system = RESPONDER_SYSTEM[mode]
    if instructions:
        system = f"{system}\n\n{instructions}"
    messages = [{"role": "system", "content": system}]
    messages.extend({"role": item["role"], "content": item["content"]} for item in turns)
    return messages
