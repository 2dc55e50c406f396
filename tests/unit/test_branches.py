"""The branch tree's answers (owner, versions, switching) against conversations simulated
item by item.

The simulation keeps every branch's real history, each item a token naming the branch
that wrote it (a regenerated prompt is a copy of its parent's, token included), and forks
as the runtime does: from the nearest branch, walking up from the viewed one, with a
boundary of the right size. The expected versions are then read off the histories
themselves (same items before ``k``, distinct items at ``k``), independently of the
tree's owner bookkeeping, which is what is under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from chatbot.domain.branch_ids import branch_app_id
from chatbot.domain.branch_tree import BranchInputError, BranchTree, plan_edit, plan_regenerate
from chatbot.domain.chat_items import ChatItem, assistant_item, error_item, user_item
from chatbot.store import BranchRecord

CONVERSATION = "c"


@dataclass
class Branch:
    history: list[ChatItem]
    boundaries: set[int]  # item counts of the states it can be forked from
    parent: str | None = None
    fork_sequence_id: int | None = None
    diverges_at: int = 0
    created: int = 0
    shown: int = 0


@dataclass
class Simulation:
    branches: dict[str, Branch] = field(
        default_factory=lambda: {CONVERSATION: Branch(history=[], boundaries=set())}
    )
    written: int = 0

    def token(self, app_id: str) -> str:
        self.written += 1
        return f"{app_id}#{self.written}"

    def tree(self) -> BranchTree:
        return BranchTree(
            CONVERSATION,
            [
                BranchRecord(
                    app_id=app_id,
                    parent_app_id=branch.parent,
                    fork_sequence_id=branch.fork_sequence_id,
                    diverges_at=branch.diverges_at,
                    created=branch.created,
                    shown=branch.shown,
                    items=len(branch.history),
                )
                for app_id, branch in self.branches.items()
                if branch.history
            ],
        )

    @property
    def shown(self) -> str:
        return self.tree().shown

    def turn(self, app_id: str, *, failed: bool = False) -> None:
        branch = self.branches[app_id]
        branch.history.append(user_item(self.token(app_id)))
        if failed:
            branch.history.append(assistant_item(self.token(app_id)))
            branch.history.append(error_item(self.token(app_id)))
        else:
            branch.history.append(assistant_item(self.token(app_id)))
        branch.boundaries.add(len(branch.history))

    def _fork(self, viewed: str, boundary: int, diverges_at: int, copied: ChatItem | None) -> str:
        tree = self.tree()
        parent = next(
            app_id
            for app_id in tree.lineage(viewed)
            if boundary in self.branches[app_id].boundaries
            or (boundary == 0 and self.branches[app_id].history)
        )
        number = tree.next_number()
        app_id = branch_app_id(CONVERSATION, number)
        history = list(self.branches[parent].history[:boundary])
        history.append(copied if copied is not None else user_item(self.token(app_id)))
        history.append(assistant_item(self.token(app_id)))
        self.branches[app_id] = Branch(
            history=history,
            boundaries={boundary, len(history)},
            parent=parent,
            fork_sequence_id=boundary,  # any id: the tree never reads it
            diverges_at=diverges_at,
            created=number,
            shown=max(branch.shown for branch in self.branches.values()) + 1,
        )
        return app_id

    def edit(self, viewed: str, index: int) -> str:
        plan = plan_edit(self.branches[viewed].history, index, "new prompt")
        assert plan.boundary == plan.diverges_at == index
        return self._fork(viewed, plan.boundary, plan.diverges_at, None)

    def regenerate(self, viewed: str, index: int) -> str:
        history = self.branches[viewed].history
        plan = plan_regenerate(history, index)
        assert plan.prompt == history[plan.boundary]["content"]
        return self._fork(viewed, plan.boundary, plan.diverges_at, history[plan.boundary])

    def show(self, app_id: str) -> None:
        self.branches[app_id].shown = max(b.shown for b in self.branches.values()) + 1

    # --- what the histories themselves say -------------------------------------------------
    def expected_versions(self, viewed: str, index: int) -> list[str]:
        """The writers of the distinct items at ``index`` among the branches that hold the
        same items before it, oldest writer first."""
        seen = self.branches[viewed].history
        tokens = {
            branch.history[index]["content"]
            for branch in self.branches.values()
            if len(branch.history) > index and branch.history[:index] == seen[:index]
        }
        writers = [token.split("#")[0] for token in tokens]
        return sorted(writers, key=lambda app_id: self.branches[app_id].created)

    def expected_switch(self, viewed: str, index: int, version: int) -> str:
        writer = self.expected_versions(viewed, index)[version]
        seen = self.branches[viewed].history
        holders = [
            (branch.shown, app_id)
            for app_id, branch in self.branches.items()
            if len(branch.history) > index
            and branch.history[:index] == seen[:index]
            and branch.history[index]["content"].split("#")[0] == writer
        ]
        return max(holders)[1]


def _check(sim: Simulation) -> None:
    tree = sim.tree()
    shown = tree.shown
    history = sim.branches[shown].history
    marks = tree.marks(shown, len(history))
    for index, item in enumerate(history):
        expected = sim.expected_versions(shown, index)
        assert tree.versions(shown, index) == expected, (shown, index)
        writer = item["content"].split("#")[0]
        assert tree.owner(shown, index) == writer
        assert tree.version_of(shown, index) == expected.index(writer)
        if len(expected) > 1:
            assert marks[index].versions == len(expected)
            assert marks[index].version == expected.index(writer)
            assert marks[index].app_id == writer
        else:
            assert index not in marks
        for version in range(len(expected)):
            target = tree.switch_target(shown, index, version)
            assert target == sim.expected_switch(shown, index, version)


def test_an_edit_makes_two_versions_of_the_prompt_and_switching_back_restores_it() -> None:
    sim = Simulation()
    for _ in range(3):
        sim.turn(CONVERSATION)
    edited = sim.edit(CONVERSATION, 2)
    assert sim.shown == edited == "c~1"
    tree = sim.tree()
    assert sim.branches[edited].history[:2] == sim.branches[CONVERSATION].history[:2]
    assert tree.versions(edited, 2) == [CONVERSATION, edited]
    assert tree.version_of(edited, 2) == 1
    assert set(tree.marks(edited)) == {2}  # the reply after an edit is no second version
    assert tree.switch_target(edited, 2, 0) == CONVERSATION
    sim.show(CONVERSATION)
    assert sim.tree().marks(CONVERSATION)[2].version == 0
    _check(sim)


def test_a_regenerated_reply_is_a_version_of_the_reply_not_of_its_prompt() -> None:
    sim = Simulation()
    sim.turn(CONVERSATION)
    sim.turn(CONVERSATION)
    again = sim.regenerate(CONVERSATION, 3)
    tree = sim.tree()
    assert tree.versions(again, 2) == [CONVERSATION]  # the prompt is the same item
    assert tree.versions(again, 3) == [CONVERSATION, again]
    third = sim.regenerate(again, 3)
    tree = sim.tree()
    assert tree.versions(third, 3) == [CONVERSATION, again, third]
    # The third forked from the second's own fork point: its parent is the second.
    assert tree.record(third).parent_app_id == again
    _check(sim)


def test_editing_the_first_prompt_forks_from_before_the_first_step() -> None:
    sim = Simulation()
    sim.turn(CONVERSATION)
    first = sim.edit(CONVERSATION, 0)
    tree = sim.tree()
    assert tree.versions(first, 0) == [CONVERSATION, first]
    assert tree.versions(first, 1) == [first]
    _check(sim)


def test_switching_to_a_version_shows_the_subtree_last_looked_at() -> None:
    sim = Simulation()
    for _ in range(3):
        sim.turn(CONVERSATION)
    edited = sim.edit(CONVERSATION, 0)
    sim.turn(edited)
    deeper = sim.edit(edited, 2)  # a branch of the edited one, further down
    sim.show(CONVERSATION)
    tree = sim.tree()
    # Back to version 1 of item 0: the user was last on ``deeper`` there, not ``edited``.
    assert tree.switch_target(CONVERSATION, 0, 1) == deeper
    _check(sim)


def test_a_failed_turn_regenerated_from_its_error_item_diverges_at_its_reply() -> None:
    sim = Simulation()
    sim.turn(CONVERSATION)
    sim.turn(CONVERSATION, failed=True)  # prompt 2, partial reply 3, error item 4
    again = sim.regenerate(CONVERSATION, 4)
    tree = sim.tree()
    assert tree.record(again).diverges_at == 3
    assert tree.versions(again, 3) == [CONVERSATION, again]
    _check(sim)


@pytest.mark.parametrize("seed", range(12))
def test_random_trees_agree_with_their_histories(seed: int) -> None:
    rng = random.Random(seed)
    sim = Simulation()
    sim.turn(CONVERSATION)
    for _ in range(40):
        shown = sim.shown
        history = sim.branches[shown].history
        choice = rng.random()
        if choice < 0.3:
            sim.turn(shown, failed=rng.random() < 0.2)
        elif choice < 0.55:
            prompts = [i for i, item in enumerate(history) if item["role"] == "user"]
            sim.edit(shown, rng.choice(prompts))
        elif choice < 0.8:
            replies = [i for i, item in enumerate(history) if item["role"] == "assistant"]
            sim.regenerate(shown, rng.choice(replies))
        else:
            tree = sim.tree()
            index = rng.randrange(len(history))
            version = rng.randrange(len(tree.versions(shown, index)))
            sim.show(tree.switch_target(shown, index, version))
        _check(sim)


def test_bad_indices_and_roles_are_refused_where_they_are_named() -> None:
    history = [user_item("a"), assistant_item("b")]
    cases = [
        (lambda: plan_edit(history, 2, "x"), "no item 2", "item_not_found"),
        (lambda: plan_edit(history, -1, "x"), "no item -1", "item_not_found"),
        (lambda: plan_edit(history, 1, "x"), "only a prompt can be edited", "item_not_branchable"),
        (lambda: plan_regenerate(history, 0), "only a reply can be", "item_not_branchable"),
        (lambda: plan_regenerate([assistant_item("hi")], 0), "answers no", "item_not_branchable"),
        (lambda: plan_regenerate([], 0), "no items yet", "item_not_found"),
    ]
    for call, message, code in cases:
        with pytest.raises(BranchInputError) as raised:
            call()
        assert message in raised.value.message
        assert raised.value.location == ("body", "index")
        assert raised.value.code == code


def test_a_version_out_of_range_is_refused_on_the_version() -> None:
    sim = Simulation()
    sim.turn(CONVERSATION)
    sim.edit(CONVERSATION, 0)
    tree = sim.tree()
    with pytest.raises(BranchInputError) as raised:
        tree.switch_target(tree.shown, 0, 2)
    assert (raised.value.location, raised.value.code) == (("body", "version"), "version_not_found")
    with pytest.raises(BranchInputError) as raised:
        tree.switch_target(tree.shown, 2, 0)
    assert (raised.value.location, raised.value.code) == (("body", "index"), "item_not_found")


def test_a_conversation_without_rows_shows_its_original() -> None:
    tree = BranchTree(CONVERSATION, [])
    assert tree.shown == CONVERSATION
    assert tree.next_number() == 1
    assert tree.marks(CONVERSATION) == {}
    assert tree.lineage(CONVERSATION) == [CONVERSATION]
