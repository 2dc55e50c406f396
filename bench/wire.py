"""What the fake upstream says, shared by the upstream and the load generator.

The load generator checks every reply it receives against ``reply_deltas``, so a
server that drops, duplicates or reorders a token is counted as an error, not
as a fast server.
"""

from __future__ import annotations

import time

import orjson

MODEL = "bench-model"
COMPLETION_ID = "chatcmpl-bench0000000000000000"
CREATED = int(time.time())

# A small vocabulary: deltas look like real tokens (a leading space, 2-9 chars).
_WORDS = (
    " the",
    " streaming",
    " proxy",
    " relays",
    " each",
    " token",
    " it",
    " gets",
    " from",
    " upstream",
    " to",
    " the",
    " browser",
    " as",
    " an",
    " event",
    ",",
    " and",
    " keeps",
    " the",
    " conversation",
    " state",
    " in",
    " Burr",
    ".",
)


def reply_deltas(n: int) -> list[str]:
    """The ``n`` content deltas of every streamed reply, in order."""
    return [_WORDS[i % len(_WORDS)] for i in range(n)]


def reply_text(n: int) -> str:
    return "".join(reply_deltas(n))


def chunk_json(delta: dict, finish_reason: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` object, as the real API writes it."""
    return orjson.dumps(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
    )


def completion_json(content: str) -> bytes:
    """A non-streaming ``chat.completion`` object (the classifier's answer)."""
    return orjson.dumps(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
        }
    )
