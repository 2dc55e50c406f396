"""Schemathesis hooks for the run in test_api_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The only hook, and it excuses no check: it shapes generated bodies where JSON Schema
cannot. One rule of the message-list routes (``/v1/chat/completions``, the AI SDK's
``/chat``) is about order: the prompt is the *last* message, which must be the user's
(JSON Schema can require a user message with text, which the document does, but not
that it comes last). A generated valid body rarely ends that way, and refusing it is
right. So each positive case of those routes gets a user prompt appended: everything
else in it is as generated, and every check runs on the answer, which must accept it.
Negative cases are left alone.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

PROMPT = "Is this request accepted?"


def _openai_prompt() -> dict[str, Any]:
    return {"role": "user", "content": PROMPT}


def _ai_sdk_prompt() -> dict[str, Any]:
    return {"id": "prompt", "role": "user", "parts": [{"type": "text", "text": PROMPT}]}


_PROMPTS = {
    "/v1/chat/completions": _openai_prompt,
    "/api/chat": _ai_sdk_prompt,
    "/api/v0/streaming_chatbot/chat": _ai_sdk_prompt,
}


# Only on these operations: a map on every operation's cases upsets Hypothesis's health
# checks on the operations with nothing to map.
@schemathesis.hook.apply_to(path_regex="^(" + "|".join(map(re.escape, _PROMPTS)) + ")$")
def map_case(context: Any, case: Any) -> Any:
    prompt = _PROMPTS[case.operation.path]
    body = case.body
    if (
        case.meta is not None
        and case.meta.generation.mode.is_positive
        and isinstance(body, dict)
        and isinstance(body.get("messages"), list)
    ):
        body["messages"] = [*body["messages"], prompt()]
    return case
