"""Where things are served: the one definition of each URL prefix."""

from __future__ import annotations

from typing import Final

# The prefix Burr's demo page calls; the whole chat API lives under it.
API_PREFIX: Final = "/api/v0/streaming_chatbot"
# Burr's tracking UI (and its demo page) are mounted here.
BURR_PREFIX: Final = "/burr"
# The OpenAI-compatible API: clients set their base URL to http://host:port/v1.
OPENAI_PREFIX: Final = "/v1"
