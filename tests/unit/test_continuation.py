"""Which conversation a stateless client's messages continue: the rules, with fake storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from chatbot.chat_items import ChatItem, assistant_item, error_item, interrupted_item, user_item
from chatbot.continuation import begin_continuation, client_view, continues, history_digest
from chatbot.persistence import ConversationBusy

U1, A1 = user_item("Hi?"), assistant_item("Hello.")
U2, A2 = user_item("A poem?"), assistant_item("Roses.", "code")


def test_the_client_view_leaves_out_errors_and_unanswered_prompts() -> None:
    history = [U1, A1, U2, error_item("The model failed."), U2, A2]
    assert client_view(history) == [
        ("user", "Hi?"), ("assistant", "Hello."), ("user", "A poem?"), ("assistant", "Roses.")
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
    app_id: str
    history: list[ChatItem]
    closed: bool = False

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Conversations:
    """Stored histories by id, and what the continuation did with them."""

    stored: dict[str, list[ChatItem]] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    begun: list[FakeTurn] = field(default_factory=list)
    looked_up: int = 0

    async def begin(self, app_id: str, seed: Sequence[ChatItem]) -> FakeTurn:
        if app_id in self.busy:
            raise ConversationBusy()
        turn = FakeTurn(app_id, self.stored.get(app_id) or list(seed))
        self.begun.append(turn)
        return turn

    async def find(self, earlier: Sequence[ChatItem]) -> str | None:
        self.looked_up += 1
        digest = history_digest(earlier)
        return next((k for k, v in self.stored.items() if history_digest(v) == digest), None)

    async def run(self, earlier: Sequence[ChatItem], named: str | None) -> FakeTurn:
        return await begin_continuation(  # type: ignore[return-value]
            earlier,
            named,
            begin=lambda app_id: self.begin(app_id, earlier),
            find=self.find,
            new_id=lambda: "new",
        )


async def test_a_first_message_starts_a_new_conversation_without_a_look_up() -> None:
    conversations = Conversations()
    turn = await conversations.run([], None)
    assert turn.app_id == "new" and conversations.looked_up == 0


async def test_earlier_messages_matching_a_stored_history_continue_it() -> None:
    conversations = Conversations(stored={"c1": [U1, A1], "c2": [U2, A2]})
    assert (await conversations.run([U2, A2], None)).app_id == "c2"


async def test_unknown_earlier_messages_seed_a_new_conversation() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]})
    turn = await conversations.run([U2, A2], None)
    assert (turn.app_id, turn.history) == ("new", [U2, A2])


async def test_a_named_conversation_is_continued_with_or_without_earlier_messages() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]})
    assert (await conversations.run([], "c1")).app_id == "c1"
    assert (await conversations.run([U1, A1], "c1")).app_id == "c1"
    assert conversations.looked_up == 0


async def test_a_named_conversation_that_does_not_exist_starts_from_the_clients_messages() -> None:
    turn = await Conversations().run([U1, A1], "mine")
    assert (turn.app_id, turn.history) == ("mine", [U1, A1])


async def test_contradicting_a_named_conversation_forks_and_leaves_it_alone() -> None:
    conversations = Conversations(stored={"c1": [U1, A1, U2, A2]})
    edited = [U1, assistant_item("Edited.")]
    turn = await conversations.run(edited, "c1")
    assert (turn.app_id, turn.history) == ("new", edited)
    original = conversations.begun[0]
    assert original.app_id == "c1" and original.closed  # lease given back, nothing stored


async def test_a_fork_is_found_again_when_the_client_names_the_original_next_time() -> None:
    fork = [U1, assistant_item("Edited."), U2, A2]
    conversations = Conversations(stored={"c1": [U1, A1], "fork": fork})
    assert (await conversations.run(fork, "c1")).app_id == "fork"


async def test_a_busy_named_conversation_is_refused_not_forked() -> None:
    conversations = Conversations(stored={"c1": [U1, A1]}, busy={"c1"})
    with pytest.raises(ConversationBusy):
        await conversations.run([U1, A1], "c1")
