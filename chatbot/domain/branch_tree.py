"""A conversation's branches as a tree: who wrote each item, its versions, what to show.

Each branch is a Burr application forked from another one (``chatbot.domain.branch_ids``). A
branch holds the items it was forked with (its parent's, up to the fork) and then its
own; it *owns* the items from ``diverges_at`` on, and the items before come from its
parent's owners. Two branches show the same item ``k`` exactly when they have the same
owner at ``k``; they share the conversation up to ``k`` when they have the same owner at
``k - 1`` (a branch never rewrites an item, so the owner of ``k - 1`` fixes every item
before it too). So the *versions* of item ``k`` are the distinct owners at ``k`` among
the branches that agree with the shown one before ``k``, oldest first.

Everything here is pure: the runtime reads the branch rows and histories from the store,
and asks this module what they mean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chatbot.domain.chat_items import ChatItem
from chatbot.domain.errors import ITEM_NOT_BRANCHABLE, ITEM_NOT_FOUND, VERSION_NOT_FOUND

INDEX = ("body", "index")
VERSION = ("body", "version")


@dataclass(frozen=True, slots=True)
class BranchRecord:
    """One branch of a conversation: a Burr application forked from another one."""

    app_id: str  # Burr app id; the conversation id for the original
    parent_app_id: str | None
    fork_sequence_id: int | None  # the parent's sequence id it was forked from
    diverges_at: int  # first item it owns (0 for the original)
    created: int  # creation order in the conversation (0 = original)
    shown: int  # the conversation shows its greatest
    items: int  # length of its latest stored history
    # When the branch was made (the original: when its conversation was); None if unknown.
    created_at: dt.datetime | None = None


class BranchInputError(Exception):
    """A branch request that names an item or version it cannot apply to; nothing changed.

    ``code`` says which (``chatbot.domain.errors``: an item, a version or a branch that
    is not there, or an item that cannot be branched), ``location`` the request field."""

    def __init__(self, code: str, message: str, location: Sequence[str]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = tuple(location)


def _out_of_range(index: int, length: int, location: Sequence[str]) -> BranchInputError:
    if length == 0:
        where = "the conversation has no items yet"
    else:
        where = f"the conversation's items are numbered 0 to {length - 1}"
    return BranchInputError(ITEM_NOT_FOUND, f"There is no item {index}: {where}.", location)


@dataclass(frozen=True, slots=True)
class ForkPlan:
    """How a new branch starts: from the state holding the first ``boundary`` items of the
    branch being viewed, running one turn with ``prompt``; it owns items from
    ``diverges_at`` on."""

    boundary: int
    diverges_at: int
    prompt: str


def plan_edit(history: Sequence[ChatItem], index: int, prompt: str) -> ForkPlan:
    """Edit the prompt at ``index``: fork from just before it and send ``prompt`` instead."""
    if not 0 <= index < len(history):
        raise _out_of_range(index, len(history), INDEX)
    if history[index]["role"] != "user":
        raise BranchInputError(
            ITEM_NOT_BRANCHABLE,
            f"Item {index} is a reply; only a prompt can be edited (regenerate a reply instead).",
            INDEX,
        )
    return ForkPlan(boundary=index, diverges_at=index, prompt=prompt)


def plan_regenerate(history: Sequence[ChatItem], index: int) -> ForkPlan:
    """Regenerate the reply at ``index``: fork from just before the prompt that started its
    turn and send that prompt again.

    Whichever assistant item of the turn ``index`` names (the reply, or a partial reply or
    the error item of a failed turn), the new branch diverges at the turn's first item
    after the prompt: that is where its own reply goes. The prompt it sends again is a
    copy of the parent's and counts as the same item.
    """
    if not 0 <= index < len(history):
        raise _out_of_range(index, len(history), INDEX)
    if history[index]["role"] == "user":
        raise BranchInputError(
            ITEM_NOT_BRANCHABLE,
            f"Item {index} is a prompt; only a reply can be regenerated (edit a prompt instead).",
            INDEX,
        )
    prompt_index = next((i for i in range(index - 1, -1, -1) if history[i]["role"] == "user"), None)
    if prompt_index is None:
        raise BranchInputError(
            ITEM_NOT_BRANCHABLE, f"Item {index} answers no prompt of this conversation.", INDEX
        )
    return ForkPlan(
        boundary=prompt_index,
        diverges_at=prompt_index + 1,
        prompt=history[prompt_index]["content"],
    )


@dataclass(frozen=True, slots=True)
class Mark:
    """Item ``k`` of the shown branch has ``versions`` versions; it shows ``version``,
    written by the branch ``app_id``."""

    version: int
    versions: int
    app_id: str


class BranchTree:
    """The branches of one conversation, as the store lists them (oldest first).

    An empty list is a conversation with nothing stored: it shows its original branch.
    """

    def __init__(self, conversation_id: str, records: Iterable[BranchRecord]) -> None:
        self.conversation_id = conversation_id
        self.records = sorted(records, key=lambda record: record.created)
        self._by_id = {record.app_id: record for record in self.records}
        self._owners: dict[str, list[str]] = {}

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._by_id

    def record(self, app_id: str) -> BranchRecord | None:
        return self._by_id.get(app_id)

    @property
    def shown(self) -> str:
        """The Burr app id the conversation shows: the greatest ``shown``."""
        if not self.records:
            return self.conversation_id
        return max(self.records, key=lambda record: (record.shown, record.created)).app_id

    def next_number(self) -> int:
        """The ``n`` of the next branch's id (``branch_app_id(conversation, n)``)."""
        return max((record.created for record in self.records), default=0) + 1

    def lineage(self, app_id: str) -> list[str]:
        """``app_id`` and its ancestors, nearest first: where a fork looks for its parent."""
        chain: list[str] = []
        current: str | None = app_id
        while current is not None and current not in chain:
            chain.append(current)
            record = self._by_id.get(current)
            current = record.parent_app_id if record is not None else None
        return chain

    def owners(self, app_id: str) -> list[str]:
        """The owner of each item of the branch's latest history, by index."""
        owners = self._owners.get(app_id)
        if owners is not None:
            return owners
        record = self._by_id.get(app_id)
        if record is None:
            return []
        self._owners[app_id] = []  # a (corrupt) cycle ends here instead of recursing
        inherited: list[str] = []
        if record.parent_app_id is not None and record.diverges_at > 0:
            inherited = self.owners(record.parent_app_id)[: record.diverges_at]
        own = max(record.items - len(inherited), 0)
        owners = inherited + [app_id] * own
        self._owners[app_id] = owners
        return owners

    def owner(self, app_id: str, index: int) -> str | None:
        owners = self.owners(app_id)
        return owners[index] if 0 <= index < len(owners) else None

    def _agreeing(self, app_id: str, index: int) -> list[BranchRecord]:
        """The branches that have item ``index`` and share every item before it with
        ``app_id``."""
        before = self.owner(app_id, index - 1) if index > 0 else None
        return [
            record
            for record in self.records
            if record.items > index
            and (index == 0 or self.owner(record.app_id, index - 1) == before)
        ]

    def versions(self, app_id: str, index: int) -> list[str]:
        """The versions of item ``index`` seen from branch ``app_id``: the branches that
        wrote them, in creation order (version ``i`` is the ``i``-th)."""
        owners = {self.owner(record.app_id, index) for record in self._agreeing(app_id, index)}
        owners.discard(None)
        return sorted(owners, key=lambda owner: self._by_id[owner].created)  # type: ignore[index]

    def version_of(self, app_id: str, index: int) -> int:
        """Which version of item ``index`` branch ``app_id`` shows."""
        return self.versions(app_id, index).index(self.owner(app_id, index))  # type: ignore[arg-type]

    def switch_target(self, app_id: str, index: int, version: int) -> str:
        """The branch to show for version ``version`` of item ``index``, seen from ``app_id``:
        of the branches holding that version (and the same items before it), the one shown
        last, so that switching back restores what the user was looking at."""
        length = len(self.owners(app_id))
        if not 0 <= index < length:
            raise _out_of_range(index, length, INDEX)
        versions = self.versions(app_id, index)
        if not 0 <= version < len(versions):
            raise BranchInputError(
                VERSION_NOT_FOUND,
                f"Item {index} has {len(versions)} version(s), numbered from 0; "
                f"there is no version {version}.",
                VERSION,
            )
        wanted = versions[version]
        holders = [
            record
            for record in self._agreeing(app_id, index)
            if self.owner(record.app_id, index) == wanted
        ]
        return max(holders, key=lambda record: (record.shown, record.created)).app_id

    def marks(self, app_id: str, length: int | None = None) -> dict[int, Mark]:
        """The items of branch ``app_id`` that have two versions or more, by index.

        ``length`` bounds the items looked at (the history actually loaded)."""
        if len(self.records) < 2:
            return {}
        owners = self.owners(app_id)
        count = len(owners) if length is None else min(length, len(owners))
        marks: dict[int, Mark] = {}
        for index in range(count):
            versions = self.versions(app_id, index)
            if len(versions) > 1:
                marks[index] = Mark(versions.index(owners[index]), len(versions), owners[index])
        return marks
