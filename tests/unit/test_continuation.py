"""Where a stateless client's messages go on (conversation, branch): the rules, faked storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from chatbot.conversations.continuation import (
    begin_continuation,
    client_view,
    continues,
    history_digest,
)
from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.branch_points import BranchPoint, turn_starts
from chatbot.domain.chat_items import (
    ChatItem,
    assistant_item,
    error_item,
    interrupted_item,
    user_item,
)
from chatbot.store import ConversationBusy

U1, A1 = user_item("Hi?"), assistant_item("Hello.")
U2, A2 = user_item("A poem?"), assistant_item("Roses.", "code")


def test_the_client_view_leaves_out_errors_and_unanswered_prompts() -> None:
    history = [U1, A1, U2, error_item("The model failed."), U2, A2]
    assert client_view(history) == [
        ("user", "Hi?"),
        ("assistant", "Hello."),
        ("user", "A poem?"),
        ("assistant", "Roses."),
    ]
    # A reply cut short is what the user saw: it stays, without its marker.
    assert client_view([U1, interrupted_item("Hel")]) == [("user", "Hi?"), ("assistant", "Hel")]
    assert client_view([U1]) == []


def test_equal_views_have_equal_digests_and_types_do_not_matter() -> None:
    assert history_digest([U1, A1]) == history_digest([U1, error_item("x"), U1, A1])
    assert history_digest([U1, assistant_item("Hello.", "code")]) == history_digest([U1, A1])
    assert history_digest([U1, A1]) != history_digest([U1, assistant_item("Hello!")])
    assert history_digest([U1, A1]) != history_digest([A1, U1])


def test_a_client_continues_a_history_it_holds_or_when_it_sends_nothing_earlier() -> None:
    assert continues([U1, A1], [U1, A1])
    assert continues([U1, A1], [])
    assert not continues([U1, A1, U2, A2], [U1, A1])
    assert not continues([U1, A1], [U1, assistant_item("Edited.")])


@dataclass
class FakeTurn:
    conversation_id: str
    branch: str  # the Burr app id it writes
    history: list[ChatItem]
    point: BranchPoint | None = None
    closed: bool = False

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Conversations:
    """Stored branches (Burr app id: latest history), which one each conversation shows,
    and what the continuation did with them."""

    stored: dict[str, list[ChatItem]] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    seed: Sequence[ChatItem] = ()
    begun: list[FakeTurn] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)
    looked_up: int = 0

    def shown_branch(self, conversation_id: str) -> str:
        return self.shown.get(conversation_id, conversation_id)

    async def begin(self, conversation_id: str) -> FakeTurn:
        if conversation_id in self.busy:
            raise ConversationBusy()
        branch = self.shown_branch(conversation_id)
        turn = FakeTurn(conversation_id, branch, self.stored.get(branch) or list(self.seed))
        self.begun.append(turn)
        return turn

    async def begin_branch(self, conversation_id: str, point: BranchPoint) -> FakeTurn | None:
        if conversation_id in self.busy:
            raise ConversationBusy()
        parent = self.stored[self.shown_branch(conversation_id)]
        start = point.index if point.prompt is not None else point.index - 1
        number = sum(1 for app_id in self.stored if conversation_of(app_id) == conversation_id)
        turn = FakeTurn(conversation_id, f"{conversation_id}~{number}", parent[:start], point)
        self.begun.append(turn)
        return turn

    async def branch_history(self, app_id: str) -> list[ChatItem]:
        return self.stored[app_id]

    async def show(self, app_id: str) -> None:
        self.shown[conversation_of(app_id)] = app_id
        self.switched.append(app_id)

    async def find(self, earlier: Sequence[ChatItem]) -> str | None:
        self.looked_up += 1
        digest = history_digest(earlier)
        return next((k for k, v in self.stored.items() if history_digest(v) == digest), None)

    async def find_branch(self, conversation_id: str, earlier: Sequence[ChatItem]) -> str | None:
        """Like the stores: a boundary (before a turn, or the end) with that digest."""
        digest = history_digest(earlier)
        for app_id, history in self.stored.items():
            if conversation_of(app_id) != conversation_id:
                continue
            boundaries = [*turn_starts(history), len(history)]
            if any(history_digest(history[:items]) == digest for items in boundaries):
                return app_id
        return None

    async def run(self, earlier: Sequence[ChatItem], named: str | None, prompt: str = "Q?"):
        self.seed = earlier
        return await begin_continuation(prompt, earlier, named, self, lambda: "new")


async def test_a_first_message_starts_a_new_conversation_without_a_look_up() -> None:
    conversations = Conversations()
    turn = await conversations.run([], None)
    assert turn.conversation_id == "new" and conversations.looked_up == 0


async def test_earlier_messages_matching_a_stored_history_continue_it() -> None:
    conversations = Conversations(stored={"c1": [U1, A1], "c2": [U2, A2]})
    assert (await conversations.run([U2, A2], None)).conversation_id == "c2"


async def test_unknown_earlier_messages_seed_a_new_conversation() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]})
    turn = await conversations.run([U2, A2], None)
    assert (turn.conversation_id, turn.history) == ("new", [U2, A2])


async def test_a_named_conversation_is_continued_with_or_without_earlier_messages() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]})
    assert (await conversations.run([], "c1")).conversation_id == "c1"
    assert (await conversations.run([U1, A1], "c1")).conversation_id == "c1"
    assert conversations.looked_up == 0


async def test_a_named_conversation_that_does_not_exist_starts_from_the_clients_messages() -> None:
    turn = await Conversations().run([U1, A1], "mine")
    assert (turn.conversation_id, turn.history) == ("mine", [U1, A1])


async def test_resending_a_turns_prompt_in_a_named_conversation_regenerates_it_as_a_branch() -> (
    None
):
    conversations = Conversations(stored={"c1": [U1, A1, U2, A2]})
    turn = await conversations.run([U1, A1], "c1", prompt="A poem?")
    assert (turn.conversation_id, turn.branch, turn.point) == ("c1", "c1~1", BranchPoint(3, None))
    assert turn.history == [U1, A1]
    shown = conversations.begun[0]
    assert shown.branch == "c1" and shown.closed  # lease given back, nothing stored
    assert conversations.looked_up == 0


async def test_another_prompt_after_a_turns_history_edits_that_turn_as_a_branch() -> None:
    conversations = Conversations(stored={"c1": [U1, A1, U2, A2]})
    turn = await conversations.run([], "c1", prompt="Hey?")  # no earlier messages: goes on
    assert turn.branch == "c1" and turn.point is None
    turn = await conversations.run([U1, A1], "c1", prompt="A song?")
    assert (turn.branch, turn.point, turn.history) == ("c1~1", BranchPoint(2, "A song?"), [U1, A1])


async def test_a_history_the_conversation_never_held_goes_on_in_a_new_conversation() -> None:
    conversations = Conversations(stored={"c1": [U1, A1, U2, A2]})
    edited = [U1, assistant_item("Edited.")]
    turn = await conversations.run(edited, "c1")
    assert (turn.conversation_id, turn.history) == ("new", edited)
    assert all(t.point is None for t in conversations.begun) and conversations.switched == []


async def test_a_new_conversation_is_found_again_when_the_client_names_the_original() -> None:
    elsewhere = [U1, assistant_item("Edited."), U2, A2]
    conversations = Conversations(stored={"c1": [U1, A1], "new": elsewhere})
    assert (await conversations.run(elsewhere, "c1")).conversation_id == "new"


async def test_a_client_holding_a_branch_that_is_not_shown_walks_back_to_it() -> None:
    original = [U1, A1, U2, A2]
    conversations = Conversations(
        stored={"c1": original, "c1~1": [U1, assistant_item("Hi!")]}, shown={"c1": "c1~1"}
    )
    turn = await conversations.run(original, "c1")
    assert (turn.branch, turn.point, conversations.switched) == ("c1", None, ["c1"])


async def test_re_asking_a_turn_of_a_branch_that_is_not_shown_branches_that_one() -> None:
    original = [U1, A1, U2, A2]
    conversations = Conversations(
        stored={"c1": original, "c1~1": [U1, assistant_item("Hi!")]}, shown={"c1": "c1~1"}
    )
    turn = await conversations.run([U1, A1], "c1", prompt="A poem?")
    assert conversations.switched == ["c1"]
    assert (turn.branch, turn.point, turn.history) == ("c1~2", BranchPoint(3, None), [U1, A1])


async def test_a_turn_the_shown_branch_shares_with_others_is_branched_from_the_shown_one() -> None:
    conversations = Conversations(
        stored={"c1": [U1, A1, U2, A2], "c1~1": [U1, A1, U2, assistant_item("Violets.")]},
        shown={"c1": "c1~1"},
    )
    turn = await conversations.run([U1, A1], "c1", prompt="Else?")
    assert (turn.branch, turn.point, conversations.switched) == (
        "c1~2",
        BranchPoint(2, "Else?"),
        [],
    )


async def test_a_found_branch_that_is_not_shown_is_shown_and_continued() -> None:
    branch = [U1, assistant_item("Hi!")]
    conversations = Conversations(stored={"c1": [U1, A1], "c1~1": branch})
    turn = await conversations.run(branch, None)
    assert (turn.conversation_id, turn.branch, conversations.switched) == ("c1", "c1~1", ["c1~1"])
    # Shown already: no switch.
    await conversations.run(branch, None)
    assert conversations.switched == ["c1~1"]


async def test_a_branch_whose_history_moved_under_the_lease_is_given_up() -> None:
    conversations = Conversations(stored={"c1": [U1, A1, U2, A2]})

    async def moved(conversation_id: str, point: BranchPoint) -> FakeTurn:
        turn = FakeTurn(conversation_id, "c1~1", [U2, A2], point)
        conversations.begun.append(turn)
        return turn

    conversations.begin_branch = moved  # type: ignore[method-assign]
    turn = await conversations.run([U1, A1], "c1", prompt="A poem?")
    assert turn.conversation_id == "new"
    *given_up, last = conversations.begun
    assert given_up and all(t.closed for t in given_up) and "c1~1" in [t.branch for t in given_up]
    assert last.branch == "new" and not last.closed


async def test_a_busy_named_conversation_is_refused_not_forked() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]}, busy={"c1"})
    with pytest.raises(ConversationBusy):
        await conversations.run([U1, A1], "c1")
