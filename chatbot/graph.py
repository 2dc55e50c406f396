"""The chatbot's routing, readable at one glance: one ``GraphBuilder`` expression.

prompt → check_safety ─unsafe→ unsafe_response ─────────────────────┐
              └─safe→ decide_mode → generate_code | answer_question  │
                                    | generate_poem | prompt_for_more ┴→ prompt
"""

from __future__ import annotations

from typing import Final

from burr.core import default, when
from burr.core.graph import Graph, GraphBuilder

from chatbot.actions import (
    check_safety,
    decide_mode,
    process_prompt,
    respond_with_model,
    respond_with_text,
)
from chatbot.llm.chat_model import ChatModel

ENTRYPOINT: Final = "prompt"
RESPONSE_ACTIONS: Final = (
    "unsafe_response",
    "generate_code",
    "answer_question",
    "generate_poem",
    "prompt_for_more",
)

UNSAFE_TEXT: Final = (
    "I can't help with that request. If you think this was a mistake, try rephrasing it."
)
CLARIFY_TEXT: Final = (
    "I'm not sure what you'd like. I can answer a question, write some code, or write a poem: "
    "could you say a little more about what you need?"
)


def build_graph(model: ChatModel, *, max_context_messages: int, canned_pace_s: float) -> Graph:
    def llm_reply(mode: str):
        return respond_with_model.bind(
            model=model, mode=mode, max_context_messages=max_context_messages
        )

    return (
        GraphBuilder()
        .with_actions(
            prompt=process_prompt,
            check_safety=check_safety,
            unsafe_response=respond_with_text.bind(text=UNSAFE_TEXT, pace_s=canned_pace_s),
            decide_mode=decide_mode.bind(model=model),
            generate_code=llm_reply("generate_code"),
            answer_question=llm_reply("answer_question"),
            generate_poem=llm_reply("generate_poem"),
            prompt_for_more=respond_with_text.bind(text=CLARIFY_TEXT, pace_s=canned_pace_s),
        )
        .with_transitions(
            ("prompt", "check_safety", default),
            ("check_safety", "decide_mode", when(safe=True)),
            ("check_safety", "unsafe_response", default),
            ("decide_mode", "generate_code", when(mode="generate_code")),
            ("decide_mode", "answer_question", when(mode="answer_question")),
            ("decide_mode", "generate_poem", when(mode="generate_poem")),
            ("decide_mode", "prompt_for_more", default),
            (list(RESPONSE_ACTIONS), "prompt", default),
        )
        .build()
    )
