"""What a client may ask of one turn beyond its prompt.

The chat UI and Burr's page send a prompt and nothing else. Stateless clients (the
OpenAI-compatible API) also bring the conversation so far, their own system prompt and
sampling options; this is how those reach the graph without the graph knowing HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.domain.chat_items import ChatItem


@dataclass(frozen=True, slots=True)
class TurnOptions:
    # The history a conversation starts from when nothing is stored for it yet (a client
    # that arrives with earlier messages); ignored for a conversation that has a history.
    seed: Sequence[ChatItem] = ()
    # The client's system prompt, kept as the conversation's instructions and given to the
    # reply model only; None keeps the instructions the conversation already has.
    instructions: str | None = None
    # Sent with the reply call as they are (temperature, max_tokens, stop...).
    sampling: Mapping[str, Any] = field(default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """The Burr inputs of the turn's first step and its responder."""
        inputs: dict[str, Any] = {}
        if self.instructions is not None:
            inputs["instructions"] = self.instructions
        if self.sampling:
            inputs["sampling"] = dict(self.sampling)
        return inputs
