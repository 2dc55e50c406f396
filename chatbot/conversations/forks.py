"""A conversation's branches at run time: the history with its versions, switching, forking.

Editing a prompt or regenerating a reply forks a new branch (a Burr application of its
own, ``chatbot.domain.branch_ids``) with Burr's own ``fork_from_app_id`` /
``fork_from_sequence_id``, so Burr's tracking records each branch's parent. What the
tree means (who wrote an item, its versions, what a switch shows) is the pure logic of
``chatbot.domain.branch_tree``; this module reads what it needs from the store, asks it, and
builds the forked Burr application.

``Branching`` is given the store, the application factory and the tracking logs, and
knows nothing of turns: the conversation service (``chatbot.conversations.service``)
runs a fork's first turn like any other (capacity, lease, ``LiveTurn``), so the per-turn
path stays its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from burr.core import Application

from chatbot.conversations.leases import take_lease
from chatbot.domain.branch_ids import branch_app_id, conversation_of
from chatbot.domain.branch_tree import INDEX, BranchInputError, BranchTree, ForkPlan
from chatbot.domain.chat_items import ChatItem, as_history
from chatbot.domain.errors import (
    BRANCH_NOT_FOUND,
    ITEM_NOT_BRANCHABLE,
    ITEM_NOT_FOUND,
)
from chatbot.domain.owners import public_project
from chatbot.store import Boundary, ConversationStore, NewBranch
from chatbot.tracking.client import OffloopTrackingClient
from chatbot.tracking.logs import TrackingLogs
from chatbot.turns.applications import ApplicationFactory

# One item of ``/history``: a chat item, plus ``branch`` (``BranchMark``) where the item
# has more than one version.
HistoryItem = dict[str, Any]

PREVIEW_CHARS = 80


class ConversationNotFound(Exception):
    """The conversation named does not exist (nothing stored, never created)."""

    code = "conversation_not_found"

    def __init__(self, project_id: str, conversation_id: str) -> None:
        project = public_project(project_id)
        super().__init__(f"There is no conversation {conversation_id!r} in {project!r}.")


@dataclass(frozen=True, slots=True)
class Version:
    """One version of an item: the branch that wrote it, when, and how it begins."""

    branch_id: str  # the Burr app id of the branch
    created_at: dt.datetime | None
    preview: str


@dataclass(frozen=True, slots=True)
class Versions:
    """The versions of item ``index`` of the shown branch, and which one it shows."""

    index: int
    shown: int
    versions: list[Version]


@dataclass(frozen=True, slots=True)
class ItemVersion:
    """Version ``version`` of item ``index`` of the history shown: where a switch goes,
    unless it names a branch by its id."""

    index: int
    version: int


@dataclass(frozen=True, slots=True)
class Fork:
    """A new branch ready for its first turn: its Burr application (at the fork's state),
    the prompt that turn sends, and what its first save records about it."""

    app: Application
    prompt: str
    branch: str
    tracker: OffloopTrackingClient | None
    new_branch: NewBranch


@dataclass(frozen=True, slots=True)
class Branching:
    """The branch-aware reads and writes of a process's conversations. It keeps no state
    of its own: everything lives in the store, the applications and the tracking logs."""

    store: ConversationStore
    apps: ApplicationFactory
    tracking: TrackingLogs | None

    async def history_view(self, project_id: str, conversation_id: str) -> list[HistoryItem] | None:
        """The shown branch's items, each item with versions marked (``branch``), or None
        when the conversation does not exist."""
        tree = await self._tree(project_id, conversation_id)
        return await self._view(project_id, tree, tree.shown)

    async def _tree(self, project_id: str, conversation_id: str) -> BranchTree:
        return BranchTree(conversation_id, await self.store.branches(project_id, conversation_id))

    async def _view(
        self, project_id: str, tree: BranchTree, branch: str
    ) -> list[HistoryItem] | None:
        state = await self.store.load_state(project_id, branch)
        if state is None:
            return [] if await self.store.exists(project_id, tree.conversation_id) else None
        items: list[HistoryItem] = list(state.get("chat_history", []))
        for index, mark in tree.marks(branch, len(items)).items():
            items[index] = {
                **items[index],
                "branch": {
                    "version": mark.version,
                    "versions": mark.versions,
                    "app_id": mark.app_id,
                },
            }
        return items

    async def versions(self, project_id: str, conversation_id: str, index: int) -> Versions:
        """The versions of item ``index`` of the shown branch (a single one is an answer).

        Raises ``ConversationNotFound``, or ``BranchInputError`` for an index the shown
        branch does not have."""
        tree = await self._tree(project_id, conversation_id)
        shown = tree.shown
        length = len(tree.owners(shown))
        if not 0 <= index < length:
            if not tree.records and not await self.store.exists(project_id, conversation_id):
                raise ConversationNotFound(project_id, conversation_id)
            raise BranchInputError(
                ITEM_NOT_FOUND,
                f"There is no item {index}: the conversation has {length} item(s).",
                ("query", "index"),
            )
        owners = tree.versions(shown, index)
        states = await asyncio.gather(
            *(self.store.load_state(project_id, owner) for owner in owners)
        )
        versions = []
        for owner, state in zip(owners, states, strict=True):
            history = state.get("chat_history", []) if state is not None else []
            item = history[index] if index < len(history) else None
            record = tree.record(owner)
            versions.append(
                Version(
                    branch_id=owner,
                    created_at=record.created_at if record is not None else None,
                    preview=item["content"][:PREVIEW_CHARS] if item is not None else "",
                )
            )
        return Versions(index=index, shown=tree.version_of(shown, index), versions=versions)

    async def switch(
        self, project_id: str, conversation_id: str, to: ItemVersion | str
    ) -> list[HistoryItem]:
        """Show ``to`` (a version of an item, or the branch with that Burr app id) and
        answer the history now shown, as ``history_view`` would.

        Holds the conversation's lease meanwhile, so it raises ``ConversationBusy`` while
        a reply is written (a switch must not move the ground under a running turn); also
        ``ConversationNotFound`` and ``BranchInputError``. Nothing changes when it raises.
        """
        lease = await take_lease(self.store, project_id, conversation_id)
        try:
            tree = await self._tree(project_id, conversation_id)
            if not tree.records and not await self.store.exists(project_id, conversation_id):
                raise ConversationNotFound(project_id, conversation_id)
            shown = tree.shown
            if isinstance(to, ItemVersion):
                target = tree.switch_target(shown, to.index, to.version)
            else:
                if to != shown and (to not in tree or conversation_of(to) != conversation_id):
                    raise BranchInputError(
                        BRANCH_NOT_FOUND,
                        f"{to!r} is not a branch of the conversation {conversation_id!r}.",
                        ("body", "app_id"),
                    )
                target = to
            if target != shown and not await self.store.show_branch(
                project_id, conversation_id, target
            ):
                raise BranchInputError(
                    BRANCH_NOT_FOUND,
                    f"{target!r} is not a branch of the conversation {conversation_id!r}.",
                    ("body", "app_id"),
                )
            view = await self._view(project_id, tree, target)
        finally:
            await lease.release()
        return view if view is not None else []

    async def fork(
        self,
        project_id: str,
        conversation_id: str,
        plan_for: Callable[[Sequence[ChatItem]], ForkPlan],
    ) -> Fork:
        """Fork the shown branch as ``plan_for`` its history says, for one turn.

        The caller holds the conversation's lease. Raises ``ConversationNotFound`` and
        ``BranchInputError``; nothing is stored here (the branch exists once its first
        turn is), and the tracker it opened is closed when it raises.
        """
        tracker = None
        try:
            tree = await self._tree(project_id, conversation_id)
            viewed = tree.shown
            state = await self.store.load_state(project_id, viewed)
            if state is None and not await self.store.exists(project_id, conversation_id):
                raise ConversationNotFound(project_id, conversation_id)
            history = as_history(state.get("chat_history") if state is not None else None)
            plan = plan_for(history)
            parent = await self._fork_point(project_id, tree, viewed, plan.boundary)
            branch = branch_app_id(conversation_id, tree.next_number())
            if self.tracking is not None:
                await self.tracking.remove_branch(project_id, branch)
            tracker = self.apps.tracker(project_id)
            app = await self.apps.fork(project_id, branch, tracker, parent)
            forked = as_history(app.state.get("chat_history"))
            if forked != history[: plan.boundary]:
                raise RuntimeError(
                    f"forking {parent.app_id} at {parent.sequence_id} gave {len(forked)} "
                    f"items, not the {plan.boundary} of {viewed}"
                )
        except BaseException:
            if tracker is not None:
                tracker.close()
            raise
        return Fork(
            app=app,
            prompt=plan.prompt,
            branch=branch,
            tracker=tracker,
            new_branch=NewBranch(
                parent_app_id=parent.app_id,
                fork_sequence_id=parent.sequence_id,
                fork_items=plan.boundary,
                diverges_at=plan.diverges_at,
            ),
        )

    async def _fork_point(
        self, project_id: str, tree: BranchTree, viewed: str, items: int
    ) -> Boundary:
        """Where a fork of ``viewed`` keeping its first ``items`` items starts: the stored
        boundary of that size of the nearest branch, ``viewed`` first, then its ancestors
        (the one that wrote those items, or a fork of it that kept them)."""
        for candidate in tree.lineage(viewed):
            boundary = await self.store.boundary(project_id, candidate, items)
            if boundary is not None:
                return boundary
        raise BranchInputError(
            ITEM_NOT_BRANCHABLE,
            f"The conversation cannot be branched at item {items}: no state of it ending "
            "there is stored (it was stored before branching existed, or given whole by a "
            "client).",
            INDEX,
        )
