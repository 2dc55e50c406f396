"""Splitting a reply into the word-sized pieces it streams as.

Shared by the canned replies (which stream like model replies) and the offline model.
"""

from __future__ import annotations

import re
from typing import Final

_TOKEN: Final = re.compile(r"\s*\S+\s*|\s+")


def split_tokens(text: str, words_per_chunk: int = 1) -> list[str]:
    """Word-sized pieces that join back to exactly ``text`` (whitespace stays attached)."""
    tokens = _TOKEN.findall(text)
    if words_per_chunk <= 1:
        return tokens
    return [
        "".join(tokens[i : i + words_per_chunk]) for i in range(0, len(tokens), words_per_chunk)
    ]
