"""The chatbot's routing, readable at one glance: one ``GraphBuilder`` expression.

prompt → check_safety ─unsafe→ unsafe_response ─────────────────────┐
              └─safe→ decide_mode → generate_code | answer_question  │
                                    | generate_poem | prompt_for_more ┴→ prompt
"""

from __future__ import annotations

from typing import Final

from burr.core import default, when
from burr.core.graph import Graph, GraphBuilder

from chatbot.domain.modes import FALLBACK_MODE, MODEL_MODES, RESPONSE_ACTIONS, UNSAFE_ACTION
from chatbot.graph.actions import (
    check_safety,
    decide_mode,
    process_prompt,
    respond_with_model,
    respond_with_text,
)
from chatbot.llm.chat_model import ChatModel

ENTRYPOINT: Final = "prompt"

UNSAFE_TEXT: Final = (
    "I can't help with that request. If you think this was a mistake, try rephrasing it."
)
CLARIFY_TEXT: Final = (
    "I'm not sure what you'd like. I can answer a question, write some code, or write a poem: "
    "could you say a little more about what you need?"
)


def build_graph(model: ChatModel, *, max_context_messages: int, canned_pace_s: float) -> Graph:
    """The graph; one streaming responder per mode the chat model answers (``MODEL_MODES``)."""
    model_replies = {
        mode: respond_with_model.bind(
            model=model, mode=mode, max_context_messages=max_context_messages
        )
        for mode in MODEL_MODES
    }
    return (
        GraphBuilder()
        .with_actions(
            prompt=process_prompt,
            check_safety=check_safety,
            decide_mode=decide_mode.bind(model=model),
            **{UNSAFE_ACTION: respond_with_text.bind(text=UNSAFE_TEXT, pace_s=canned_pace_s)},
            **model_replies,
            **{FALLBACK_MODE: respond_with_text.bind(text=CLARIFY_TEXT, pace_s=canned_pace_s)},
        )
        .with_transitions(
            ("prompt", "check_safety", default),
            ("check_safety", "decide_mode", when(safe=True)),
            ("check_safety", UNSAFE_ACTION, default),
            *(("decide_mode", mode, when(mode=mode)) for mode in MODEL_MODES),
            ("decide_mode", FALLBACK_MODE, default),
            (list(RESPONSE_ACTIONS), "prompt", default),
        )
        .build()
    )
