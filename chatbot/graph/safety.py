"""The safety gate in front of the classifier.

It is a deliberately simple, local rule set: it runs before any upstream call, costs
nothing, and keeps the behaviour of Burr's reference example (a prompt containing the
word "unsafe" is refused), which the Burr demo page's users rely on. A deployment that
needs a real moderation model can replace ``is_safe`` without touching the graph.
"""

from __future__ import annotations

import re
from typing import Final

_REFUSED: Final = re.compile(
    r"\b(?:"
    r"unsafe"
    r"|(?:build|make|assemble)\s+(?:a\s+|an\s+)?(?:bomb|explosive|pipe\s*bomb|bioweapon|nerve\s+agent)"
    r"|synthesi[sz]e\s+(?:sarin|vx|ricin|anthrax)"
    r"|child\s+sexual"
    r")\b",
    re.IGNORECASE,
)


def is_safe(prompt: str) -> bool:
    """True when the prompt may go on to the classifier and a model."""
    return _REFUSED.search(prompt) is None
