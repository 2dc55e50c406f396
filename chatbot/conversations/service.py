"""Conversations as the routes use them: create, read, list, delete, branch, run a turn.

The only way into conversations: routes never touch the store. Every turn loads the
conversation's latest stored state through the application factory (Burr's own
``initialize_from``; the store is a Burr persister), so any process sharing the database
can serve any turn; nothing conversation-specific is cached here.

A conversation is a tree of branches, each a Burr application (``chatbot.domain.branch_ids``);
turns and ``/history`` work on the branch it shows. Editing a prompt or regenerating a
reply forks a new branch (``chatbot.conversations.forks``), whose first turn runs like any
other. A turn is admitted and run by the registry of running turns
(``chatbot.turns.registry``); the service takes the lease and loads the application,
under the owner's quotas (``chatbot.users.quotas``: a prompt is counted once per request).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chatbot.conversations.continuation import begin_continuation
from chatbot.conversations.forks import Branching, HistoryItem, ItemVersion, Versions
from chatbot.conversations.leases import take_lease
from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.branch_points import BranchPoint
from chatbot.domain.branch_tree import BranchInputError, ForkPlan, plan_edit, plan_regenerate
from chatbot.domain.chat_items import ChatItem, as_history
from chatbot.domain.client_view import history_digest
from chatbot.domain.errors import CONVERSATION_DELETED
from chatbot.store import ConversationStore, ConversationSummary, TurnLease
from chatbot.tracking.logs import TrackingLogs
from chatbot.turns.applications import ApplicationFactory
from chatbot.turns.live_turn import LiveTurn
from chatbot.turns.options import TurnOptions
from chatbot.turns.registry import TurnRegistry
from chatbot.turns.replies import Reply
from chatbot.turns.turn import Turn
from chatbot.users.quotas import Quotas


def new_conversation_id() -> str:
    """An id for a conversation the server starts on a client's behalf (valid as an app id)."""
    return f"oai-{uuid.uuid4().hex}"


class ConversationService:
    """This process's conversations, over the store, the application factory and the
    registry of running turns."""

    def __init__(
        self,
        store: ConversationStore,
        apps: ApplicationFactory,
        turns: TurnRegistry,
        tracking: TrackingLogs | None,
        quotas: Quotas,
    ) -> None:
        self._store = store
        self._apps = apps
        self._turns = turns
        self._tracking = tracking
        self._quotas = quotas
        self._branching = Branching(store, apps, tracking)

    # --- reads --------------------------------------------------------------------------
    async def history(self, project_id: str, conversation_id: str) -> list[ChatItem] | None:
        """The shown branch's chat history, or None when the conversation does not exist."""
        branch = await self._store.shown_branch(project_id, conversation_id)
        state = await self._store.load_state(project_id, branch)
        if state is not None:
            return list(state.get("chat_history", []))
        if await self._store.exists(project_id, conversation_id):
            return []
        return None

    async def history_view(self, project_id: str, conversation_id: str) -> list[HistoryItem] | None:
        """The shown branch's items with their versions marked (``Branching.history_view``)."""
        return await self._branching.history_view(project_id, conversation_id)

    async def versions(self, project_id: str, conversation_id: str, index: int) -> Versions:
        """The versions of item ``index`` of the shown branch (``Branching.versions``)."""
        return await self._branching.versions(project_id, conversation_id, index)

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        """A page of a project's conversations, most recently active first, and the total."""
        return await self._store.list(project_id, limit, offset)

    async def ping(self) -> None:
        """Readiness: one round trip to the database; raises when it does not answer."""
        await self._store.ping()

    # --- writes -------------------------------------------------------------------------
    async def create(self, project_id: str, conversation_id: str) -> bool:
        """Register a conversation; with tracking on, it also appears in Burr's UI at once."""
        created = await self._store.create(project_id, conversation_id)
        await self._apps.announce(project_id, conversation_id)
        return created

    async def delete(self, project_id: str, conversation_id: str) -> bool:
        """Delete a conversation, its stored states and its Burr tracking log.

        A reply running in this process is stopped first (kept as interrupted, then
        deleted with the rest); one running in another process makes this raise
        ``ConversationBusy``. False when there was nothing to delete.
        """
        await self._turns.stop_here(project_id, conversation_id, CONVERSATION_DELETED)
        lease = await self._store.acquire_turn(project_id, conversation_id)
        try:
            deleted = await self._store.delete(project_id, conversation_id)
            if self._tracking is not None:
                await self._tracking.remove_conversation(project_id, conversation_id)
        finally:
            await lease.release()
        return deleted

    async def switch_branch(
        self, project_id: str, conversation_id: str, to: ItemVersion | str
    ) -> list[HistoryItem]:
        """Show another version or branch and answer its history (``Branching.switch``)."""
        return await self._branching.switch(project_id, conversation_id, to)

    # --- turns --------------------------------------------------------------------------
    async def start_reply(self, project_id: str, conversation_id: str, prompt: str) -> Reply:
        """Begin a turn and run it to its end in a task of its own: readers come and go.

        Raises what ``begin_turn`` raises, and ``QuotaExceeded``.
        """
        await self._quotas.admit(project_id)
        return self._turns.start(await self.begin_turn(project_id, conversation_id, prompt))

    async def start_branch(
        self, project_id: str, conversation_id: str, *, index: int, prompt: str | None
    ) -> Reply:
        """Fork a branch at item ``index`` and run its first turn, as ``start_reply`` runs a
        turn: ``prompt`` None regenerates the reply at ``index``, else edits the prompt
        there. Raises what ``begin_branch_turn`` raises, and ``QuotaExceeded``."""
        await self._quotas.admit(project_id)
        turn = await self.begin_branch_turn(project_id, conversation_id, index=index, prompt=prompt)
        return self._turns.start(turn)

    async def continue_reply(
        self,
        project_id: str,
        prompt: str,
        earlier: Sequence[ChatItem],
        *,
        named: str | None = None,
        options: TurnOptions | None = None,
    ) -> Reply:
        """A stateless client's reply: its conversation is found from what it sent.

        ``earlier`` are the messages the client sent before its prompt, ``named`` the
        conversation it names, if any; ``chatbot.conversations.continuation`` has the rules.
        The reply's ``conversation_id`` says where it went (possibly a new conversation; its turn
        may be a new branch's).
        """
        await self._quotas.admit(project_id)  # once, however many turns finding it begins
        options = replace(options or TurnOptions(), seed=tuple(earlier))
        finder = _Finder(self, project_id, prompt, options)
        turn = await begin_continuation(prompt, earlier, named, finder, new_id=new_conversation_id)
        return self._turns.start(turn)

    async def begin_turn(
        self,
        project_id: str,
        conversation_id: str,
        prompt: str,
        options: TurnOptions | None = None,
    ) -> LiveTurn:
        """Take the conversation's lease and prepare its shown branch's Burr application
        for one prompt.

        ``options`` carry a stateless client's context (see ``TurnOptions``). Raises
        ``Overloaded`` or ``ShuttingDown`` when no turn may start, ``ConversationBusy``
        when another turn of it is in progress anywhere, ``StoreUnavailable``.
        """
        started = time.perf_counter()
        self._turns.check_admission()
        seed = as_history(options.seed) if options is not None and options.seed else None
        # A turn seeded by its client's history is recorded only if it ends (its lease
        # keeps no prompt): the seed would be missing from the cut turn stored for it.
        lease = await self._turn_lease(project_id, conversation_id, None if seed else prompt)
        tracker = None
        try:
            branch = await self._store.shown_branch(project_id, conversation_id)
            tracker = self._apps.tracker(project_id)
            app = await self._apps.load(project_id, branch, tracker, seed)
            if app.sequence_id is None:  # nothing stored yet: make sure it is listed
                await self._store.create(project_id, conversation_id)
        except BaseException:
            if tracker is not None:
                tracker.close()
            await lease.release()
            raise
        return self._turns.admit(
            Turn(app, prompt, started=started, inputs=options.inputs() if options else None),
            project_id,
            conversation_id,
            lease,
            tracker,
            branch=branch,
        )

    async def begin_branch_turn(
        self,
        project_id: str,
        conversation_id: str,
        *,
        index: int,
        prompt: str | None,
        options: TurnOptions | None = None,
    ) -> LiveTurn:
        """``begin_turn`` for a new branch: fork the shown branch at item ``index`` (see
        ``chatbot.domain.branch_tree``) and prepare its first turn; ``prompt`` None
        regenerates the reply at ``index``, a prompt replaces the one at ``index``.

        Branching is a turn like any other: the same lease, limits and outcomes. The
        branch exists once its first turn is stored, and is then the one shown. Raises
        ``ConversationBusy``, ``ConversationNotFound``, ``BranchInputError`` (an index out
        of range or of the wrong role), and what ``begin_turn`` raises; nothing changes
        when it raises.
        """
        if prompt is None:
            return await self._begin_fork(
                project_id,
                conversation_id,
                lambda history: plan_regenerate(history, index),
                options,
            )
        edited = prompt
        return await self._begin_fork(
            project_id, conversation_id, lambda history: plan_edit(history, index, edited), options
        )

    async def _begin_fork(
        self,
        project_id: str,
        conversation_id: str,
        plan_for: Callable[[Sequence[ChatItem]], ForkPlan],
        options: TurnOptions | None,
    ) -> LiveTurn:
        """``begin_turn``'s steps around ``Branching.fork``."""
        started = time.perf_counter()
        self._turns.check_admission()
        lease = await self._turn_lease(project_id, conversation_id)
        try:
            fork = await self._branching.fork(project_id, conversation_id, plan_for)
        except BaseException:
            await lease.release()
            raise
        return self._turns.admit(
            Turn(
                fork.app, fork.prompt, started=started, inputs=options.inputs() if options else None
            ),
            project_id,
            conversation_id,
            lease,
            fork.tracker,
            branch=fork.branch,
            new_branch=fork.new_branch,
        )

    async def _turn_lease(
        self, project_id: str, conversation_id: str, prompt: str | None = None
    ) -> TurnLease:
        """The lease a turn runs under, within its owner's replies at once (counted with
        the lease: ``QuotaExceeded``); ``prompt`` is kept in it until the turn is stored,
        so that a turn cut by this process's death is stored by another one
        (``chatbot.conversations.leases``)."""
        first = self._quotas.replies_at_once(project_id)
        return await take_lease(
            self._store, project_id, conversation_id, first=first, prompt=prompt
        )

    # --- what a stateless client's continuation looks up -------------------------------
    async def branch_history(self, project_id: str, branch_id: str) -> list[ChatItem]:
        """The latest stored history of one branch (a Burr app id)."""
        state = await self._store.load_state(project_id, branch_id)
        return list(state.get("chat_history", [])) if state is not None else []

    async def find_by_history(self, project_id: str, earlier: Sequence[ChatItem]) -> str | None:
        """The branch (a Burr app id) whose latest history is ``earlier``, if any."""
        return await self._store.find_by_history(project_id, history_digest(earlier))

    async def find_boundary(
        self, project_id: str, conversation_id: str, earlier: Sequence[ChatItem]
    ) -> str | None:
        """A branch of the conversation with ``earlier`` as the history before one of its
        turns (or after its last), if any."""
        boundary = await self._store.find_boundary(
            project_id, conversation_id, history_digest(earlier)
        )
        return boundary.app_id if boundary is not None else None


@dataclass(frozen=True, slots=True)
class _Finder:
    """``ConversationFinder`` (``chatbot.conversations.continuation``) over the service,
    for one request's prompt and options."""

    service: ConversationService
    project_id: str
    prompt: str
    options: TurnOptions

    async def begin(self, conversation_id: str) -> LiveTurn:
        return await self.service.begin_turn(
            self.project_id, conversation_id, self.prompt, self.options
        )

    async def begin_branch(self, conversation_id: str, point: BranchPoint) -> LiveTurn | None:
        try:
            return await self.service.begin_branch_turn(
                self.project_id,
                conversation_id,
                index=point.index,
                prompt=point.prompt,
                options=self.options,
            )
        except BranchInputError:
            # The shown branch changed since it was read, or it cannot be forked there
            # (that part of it was given whole by a client, so no state ends there).
            return None

    async def branch_history(self, branch_id: str) -> Sequence[ChatItem]:
        return await self.service.branch_history(self.project_id, branch_id)

    async def show(self, branch_id: str) -> None:
        try:
            await self.service.switch_branch(self.project_id, conversation_of(branch_id), branch_id)
        except BranchInputError:
            pass  # gone meanwhile: the turn begun next is checked under its lease anyway

    async def find(self, earlier: Sequence[ChatItem]) -> str | None:
        return await self.service.find_by_history(self.project_id, earlier)

    async def find_branch(self, conversation_id: str, earlier: Sequence[ChatItem]) -> str | None:
        return await self.service.find_boundary(self.project_id, conversation_id, earlier)
