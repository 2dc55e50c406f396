"""Where things are served: the one definition of each URL prefix."""

from __future__ import annotations

from typing import Final

# The prefix Burr's demo page calls; the whole chat API lives under it.
API_PREFIX: Final = "/api/v0/streaming_chatbot"
# Burr's tracking UI (and its demo page) are mounted here.
BURR_PREFIX: Final = "/burr"
# The OpenAI-compatible API: clients set their base URL to http://host:port/v1.
OPENAI_PREFIX: Final = "/v1"
# The AI SDK's routes (useChat's default endpoint, and the same under the API prefix).
AI_SDK_PATHS: Final = ("/api/chat", f"{API_PREFIX}/chat")


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def is_ai_sdk_path(path: str) -> bool:
    return any(path == base or path.startswith(base + "/") for base in AI_SDK_PATHS)
