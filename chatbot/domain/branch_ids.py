"""Burr app ids of a conversation's branches.

A conversation (the id clients use) is a tree of branches, each a Burr application. The
original branch's Burr app id is the conversation id itself, so conversations stored before
branching existed keep working; branch ``n`` (1, 2, … in creation order) is
``f"{conversation_id}~{n}"``. Conversation ids never contain ``~``, so a branch id can never
be taken for a conversation, and every Burr app id names its conversation.
"""

from __future__ import annotations

BRANCH_SEPARATOR = "~"


def branch_app_id(conversation_id: str, n: int) -> str:
    """The Burr app id of the conversation's ``n``-th branch (0 is the original)."""
    if n < 0:
        raise ValueError(f"a branch number is 0 or more, not {n}")
    return conversation_id if n == 0 else f"{conversation_id}{BRANCH_SEPARATOR}{n}"


def conversation_of(app_id: str) -> str:
    """The conversation a Burr app id belongs to (itself for an original branch)."""
    return app_id.split(BRANCH_SEPARATOR, 1)[0]


def is_branch(app_id: str) -> bool:
    """Whether a Burr app id is a fork rather than a conversation's original branch."""
    return BRANCH_SEPARATOR in app_id


def branch_number(app_id: str) -> int:
    """The ``n`` of ``branch_app_id(conversation, n)`` (0 for the original)."""
    _, separator, number = app_id.partition(BRANCH_SEPARATOR)
    return int(number) if separator else 0
