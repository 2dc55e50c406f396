"""Burr app ids of branches: every one names its conversation, none is a conversation id."""

from __future__ import annotations

import pytest

from chatbot.domain.branch_ids import branch_app_id, branch_number, conversation_of, is_branch


@pytest.mark.parametrize("conversation", ["c", "a_b-9", "x" * 64])
def test_branch_ids_round_trip(conversation: str) -> None:
    assert branch_app_id(conversation, 0) == conversation
    assert not is_branch(conversation)
    assert conversation_of(conversation) == conversation
    assert branch_number(conversation) == 0
    for n in (1, 2, 17):
        app_id = branch_app_id(conversation, n)
        assert app_id == f"{conversation}~{n}"
        assert is_branch(app_id)
        assert conversation_of(app_id) == conversation
        assert branch_number(app_id) == n


def test_a_negative_branch_number_is_refused() -> None:
    with pytest.raises(ValueError):
        branch_app_id("c", -1)
