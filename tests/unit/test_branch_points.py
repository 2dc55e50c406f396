"""Where a client's resent messages part from a stored history: which item to branch at."""

from __future__ import annotations

from chatbot.domain.branch_points import (
    BranchPoint,
    branch_for_resent,
    branch_for_turn,
    turn_starts,
)
from chatbot.domain.chat_items import assistant_item, error_item, interrupted_item, user_item

U1, A1 = user_item("Hi?"), assistant_item("Hello.")
U2, A2 = user_item("A poem?"), assistant_item("Roses.", "code")
U3, A3 = user_item("And a lake?"), assistant_item("Water that waits.")
FAILED = error_item("The model failed.")
HISTORY = [U1, A1, U2, A2, U3, A3]


def test_each_turn_starts_at_its_prompt() -> None:
    assert turn_starts(HISTORY) == [0, 2, 4]
    assert turn_starts([U1, FAILED, U1, A1]) == [0, 2]
    assert turn_starts([]) == []


def test_the_same_prompt_regenerates_the_turns_reply_and_another_edits_it() -> None:
    assert branch_for_turn(HISTORY, 2, "A poem?") == BranchPoint(3, None)
    assert branch_for_turn(HISTORY, 2, "A song?") == BranchPoint(2, "A song?")
    assert branch_for_turn(HISTORY, 4, "And a lake?") == BranchPoint(5, None)


def test_a_failed_or_cut_reply_is_regenerated_too() -> None:
    assert branch_for_turn([U1, FAILED], 0, "Hi?") == BranchPoint(1, None)
    assert branch_for_turn([U1, interrupted_item("Hel"), FAILED], 0, "Hi?") == BranchPoint(1, None)


def test_a_turn_that_stored_no_reply_is_run_again_as_an_edit_to_itself() -> None:
    assert branch_for_turn([U1, U2, A2], 0, "Hi?") == BranchPoint(0, "Hi?")
    assert branch_for_turn([U1, A1, U2], 2, "A poem?") == BranchPoint(2, "A poem?")


def test_resending_a_turns_prompt_after_what_precedes_it_regenerates_its_reply() -> None:
    assert branch_for_resent(HISTORY, [U1, A1], "A poem?") == BranchPoint(3, None)
    assert branch_for_resent(HISTORY, [U1, A1, U2, A2], "And a lake?") == BranchPoint(5, None)
    assert branch_for_resent(HISTORY, [], "Hi?") == BranchPoint(1, None)


def test_resending_another_prompt_there_edits_the_turns_prompt() -> None:
    assert branch_for_resent(HISTORY, [U1, A1], "A song?") == BranchPoint(2, "A song?")
    assert branch_for_resent(HISTORY, [], "Hey?") == BranchPoint(0, "Hey?")


def test_item_types_and_interrupted_marks_do_not_matter_to_the_client() -> None:
    history = [U1, interrupted_item("Hel"), U2, A2]
    assert branch_for_resent(history, [U1, assistant_item("Hel", "code")], "X?") == BranchPoint(
        2, "X?"
    )


def test_no_branch_when_the_earlier_messages_are_not_a_prefix_of_turns() -> None:
    # An assistant message the server never wrote (edited on the client).
    assert branch_for_resent(HISTORY, [U1, assistant_item("Edited.")], "A poem?") is None
    # Longer than the stored history.
    assert branch_for_resent([U1, A1], [U1, A1, U2, A2], "And a lake?") is None
    # A reply the server wrote in another place.
    assert branch_for_resent(HISTORY, [U1, A1, U2, A1], "And a lake?") is None


def test_an_unanswered_prompt_among_the_earlier_messages_is_a_failed_turn_of_the_client() -> None:
    assert branch_for_resent(HISTORY, [U1, A1, user_item("Lost?")], "A poem?") == BranchPoint(
        3, None
    )


def test_no_branch_when_the_client_holds_the_whole_history_it_continues_it() -> None:
    assert branch_for_resent(HISTORY, HISTORY, "More?") is None
    # A failed last turn is not in the client's view: sending again continues too.
    assert branch_for_resent([U1, A1, U2, FAILED], [U1, A1], "A poem?") is None


def test_after_failed_turns_the_prompts_turn_is_regenerated_else_the_last_is_edited() -> None:
    history = [U1, A1, U2, FAILED, U3, A3]
    # Both turns 2 and 4 start right after what the client holds ([U1, A1]).
    assert branch_for_resent(history, [U1, A1], "A poem?") == BranchPoint(3, None)
    assert branch_for_resent(history, [U1, A1], "And a lake?") == BranchPoint(5, None)
    assert branch_for_resent(history, [U1, A1], "Else?") == BranchPoint(4, "Else?")


def test_a_seeded_history_that_starts_with_a_reply_counts_it() -> None:
    greeting = assistant_item("How can I help?")
    history = [greeting, U1, A1, U2, A2]
    assert branch_for_resent(history, [greeting], "Hey?") == BranchPoint(1, "Hey?")
    assert branch_for_resent(history, [greeting, U1, A1], "A poem?") == BranchPoint(4, None)
