"""What an upstream call reports besides its text: token usage and why the reply ended.

Both arrive once per call (the classifier's ``usage`` object, a stream's last events), so
reading them costs nothing per token. Servers that report no usage leave it ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatbot.domain.events import Usage

# The finish reasons a reply can end with; anything else a server invents reads as "stop".
FINISH_REASONS = frozenset({"stop", "length", "content_filter"})


def parse_usage(value: Any) -> Usage | None:
    """``Usage`` from a chat-completions ``usage`` object, or None when it is absent or odd."""
    if not isinstance(value, dict):
        return None
    prompt = value.get("prompt_tokens")
    completion = value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(max(prompt, 0), max(completion, 0))


@dataclass(slots=True)
class StreamReport:
    """Filled in by a reply stream as it ends: the upstream's usage and finish reason."""

    usage: Usage | None = None
    finish_reason: str | None = None

    def finished(self, reason: Any) -> None:
        self.finish_reason = reason if reason in FINISH_REASONS else "stop"
