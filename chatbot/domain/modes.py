"""The chatbot's mode vocabulary, defined once, and how a classifier's answer maps to a mode.

Everything that names a mode derives from this module: the graph's response actions,
the prompts (and the task marker each carries), the item type of a reply and the
offline model. Adding a mode starts here.

Real models rarely answer with a bare label: they add case, quotes, punctuation,
Markdown, or a sentence around the word. ``parse_mode`` accepts all of that and sends
anything it cannot map unambiguously to ``prompt_for_more``, the graph's safe default.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

from chatbot.domain.chat_items import ItemType

Mode = Literal["generate_code", "answer_question", "generate_poem", "prompt_for_more"]
ModelMode = Literal["generate_code", "answer_question", "generate_poem"]

MODES: Final[tuple[Mode, ...]] = get_args(Mode)
# The modes the chat model answers; the others are canned replies.
MODEL_MODES: Final[tuple[ModelMode, ...]] = get_args(ModelMode)
FALLBACK_MODE: Final[Mode] = "prompt_for_more"
UNSAFE_ACTION: Final = "unsafe_response"
# Every streaming action that writes a reply: what a turn halts after.
RESPONSE_ACTIONS: Final[tuple[str, ...]] = (UNSAFE_ACTION, *MODES)
# The labels the classifier is asked to choose from ("unknown" maps to the fallback).
CLASSIFIER_LABELS: Final[tuple[str, ...]] = (*MODEL_MODES, "unknown")
CLASSIFY_TASK: Final = "classify"

# Every system prompt opens with a task marker line (``[task: generate_poem]``): the prompts
# write it, the offline model reads it (and nothing else of the prompt).
_TASK_MARKER: Final = re.compile(r"^\[task: ([a-z_]+)\]")


def task_marker(task: str) -> str:
    return f"[task: {task}]"


def task_of(system_prompt: str) -> str | None:
    """The task a system prompt is marked with, or None for a prompt that is not ours."""
    match = _TASK_MARKER.match(system_prompt)
    return match.group(1) if match else None


def reply_item_type(action: str | None) -> ItemType:
    """The chat-item type of a reply written by ``action``: code replies render as code."""
    return "code" if action == "generate_code" else "text"


# Full labels, matched anywhere with `_`, `-` or spaces between their words.
_LABELS: Final[dict[str, Mode]] = {
    **{mode: mode for mode in MODES},
    "unknown": FALLBACK_MODE,
}
# Bare nouns, accepted when they are the only mode-word in the answer. "answer" is left
# out on purpose: "The answer is generate_poem" must not read as a question.
_NOUNS: Final[dict[str, Mode]] = {
    "code": "generate_code",
    "coding": "generate_code",
    "question": "answer_question",
    "questions": "answer_question",
    "poem": "generate_poem",
    "poems": "generate_poem",
    "poetry": "generate_poem",
}

_LABEL_PATTERN: Final = re.compile(
    r"\b(" + "|".join(label.replace("_", r"[\s_-]+") for label in _LABELS) + r")\b"
)
_NOUN_PATTERN: Final = re.compile(r"\b(" + "|".join(_NOUNS) + r")\b")
# A bare noun only decides an ambiguous answer when it stands alone as the opener ("Poem.").
_NOUN_OPENER: Final = re.compile(r"(" + "|".join(_NOUNS) + r")\s*(?:$|[.!:\n])")
_LEADING_NOISE: Final = re.compile(r"^[\W_]+")


def _canonical(label: str) -> str:
    return re.sub(r"[\s_-]+", "_", label)


def parse_mode(answer: str | None) -> Mode:
    """Map a classifier's raw answer to a mode; ambiguity or silence means ``prompt_for_more``.

    Full labels win over bare nouns. When an answer names several different modes, the
    one it opens with decides (``"generate_poem, not generate_code"``); otherwise the
    answer is ambiguous and falls back.
    """
    if not answer:
        return FALLBACK_MODE
    text = answer.lower()
    labels = [_LABELS[_canonical(m.group(1))] for m in _LABEL_PATTERN.finditer(text)]
    if labels:
        return _decide(labels, text, _LABEL_PATTERN, _LABELS)
    nouns = [_NOUNS[m.group(1)] for m in _NOUN_PATTERN.finditer(text)]
    if nouns:
        return _decide(nouns, text, _NOUN_OPENER, _NOUNS)
    return FALLBACK_MODE


def _decide(found: list[Mode], text: str, pattern: re.Pattern[str], table: dict[str, Mode]) -> Mode:
    if len(set(found)) == 1:
        return found[0]
    opener = pattern.match(_LEADING_NOISE.sub("", text))
    if opener is not None:
        return table[_canonical(opener.group(1))]
    return FALLBACK_MODE
