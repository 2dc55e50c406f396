"""The process-wide chatbot: shared client, graph, store and tracking, and the turns they run.

Built once at start-up (``Chatbot.start``) and closed at shutdown. ``Chatbot`` is the
only way into conversations: routes create, read, list, delete and run turns through
it, never through the store. Every turn loads the conversation's latest stored state
through Burr's own ``initialize_from`` (the store is a Burr persister), so any process
sharing the database can serve any turn; nothing conversation-specific is cached.

A conversation is a tree of branches, each a Burr application (``chatbot.domain.branch_ids``);
turns, ``/history`` and the Burr page work on the branch it shows. Editing a prompt or
regenerating a reply forks a new branch: ``chatbot.conversations.forks`` reads the tree
and builds the fork, and the ``Chatbot`` runs the fork's first turn like any other turn.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

import openai
from burr.core import Application, ApplicationBuilder
from prometheus_client import Gauge

from chatbot.conversations.continuation import ChatbotConversations, begin_continuation
from chatbot.conversations.forks import (
    Branching,
    ConversationNotFound,
    HistoryItem,
    Version,
    Versions,
)
from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.domain.branch_tree import ForkPlan, plan_edit, plan_regenerate
from chatbot.domain.chat_items import ChatHistory, ChatItem, as_history
from chatbot.domain.errors import CONVERSATION_DELETED, REPLY_STOPPED, SHUTTING_DOWN, TurnError
from chatbot.domain.events import TurnOutcome
from chatbot.graph.builder import ENTRYPOINT, build_graph
from chatbot.graph.burr_logging import quiet_expected_action_errors
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.metrics import Metrics
from chatbot.relay import Relay
from chatbot.settings import Settings
from chatbot.store import (
    ConversationBusy,
    ConversationStore,
    ConversationSummary,
    NewBranch,
    StoreUnavailable,
    TurnLease,
    open_store,
)
from chatbot.tracking.files import OffloopTrackingClient, TrackingWriter, tracking_dir_writable
from chatbot.turns.live_turn import LiveTurn
from chatbot.turns.options import TurnOptions
from chatbot.turns.replies import Replies, Reply
from chatbot.turns.turn import Turn

logger = logging.getLogger(__name__)

__all__ = [
    "Chatbot",
    "ConversationNotFound",
    "HistoryItem",
    "Overloaded",
    "ShuttingDown",
    "Version",
    "Versions",
    "new_conversation_id",
]


def new_conversation_id() -> str:
    """An id for a conversation the server starts on a client's behalf (valid as an app id)."""
    return f"oai-{uuid.uuid4().hex}"


class Overloaded(Exception):
    """This process already streams its configured maximum of replies."""

    code = "overloaded"


class ShuttingDown(Exception):
    """The server is draining before it stops; no new turn may start."""

    code = "server_shutting_down"


class Chatbot:
    def __init__(
        self,
        settings: Settings,
        *,
        client: openai.AsyncOpenAI,
        store: ConversationStore,
    ) -> None:
        quiet_expected_action_errors()
        self.settings = settings
        self.client = client
        self.store = store
        self.metrics = Metrics(live_turns=lambda: len(self.live_turns))
        self.model = ChatModel.from_settings(client, settings, self.metrics)
        self.graph = build_graph(
            self.model,
            max_context_messages=settings.max_context_messages,
            canned_pace_s=settings.canned_pace_ms / 1000,
        )
        self.tracking_writer = TrackingWriter() if settings.tracking_enabled else None
        # The turns running in this process, by conversation.
        self.active_turns: dict[tuple[str, str], LiveTurn] = {}
        # Every turn object still alive, finished or not: a leak shows up here first.
        self.live_turns: weakref.WeakSet[LiveTurn] = weakref.WeakSet()
        # Running and just-finished replies, readable by any number of clients.
        self.replies = Replies(settings.reply_retention_s)
        Gauge(
            "chatbot_replies_kept",
            "Replies readable from memory: running, or finished within the retention window.",
            registry=self.metrics.registry,
        ).set_function(lambda: len(self.replies))
        # Replies read or stopped across processes (see chatbot.relay).
        self.relay = Relay(
            store.relay,
            self.replies,
            stop_here=self._stop_here,
            spawn=self.spawn,
            poll_s=settings.relay_poll_ms / 1000,
            # No reply runs longer than its deadline: rows older than that and the
            # retention window were left by a process that died.
            orphaned_after_s=settings.upstream_reply_deadline_s + settings.reply_retention_s + 60,
        )
        Gauge(
            "chatbot_relay_mirrors",
            "Replies of this process copied out for readers in other processes.",
            registry=self.metrics.registry,
        ).set_function(lambda: len(self.relay.answerer.mirrors))
        Gauge(
            "chatbot_relay_followed",
            "Replies of other processes this process is copying in for its readers.",
            registry=self.metrics.registry,
        ).set_function(lambda: len(self.relay.remote.followed))
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Versions, switching and forking: the branch side of conversations.
        self.branching = Branching(
            store,
            build_app=self._builder,
            acquire_lease=self._acquire,
            new_tracker=self._tracker,
            tracking_writer=self.tracking_writer,
            tracking_dir=settings.resolved_tracking_dir if settings.tracking_enabled else None,
        )

    @classmethod
    async def start(cls, settings: Settings) -> Chatbot:
        """Open the store (creating its schema) and the shared client; fail loudly if impossible."""
        if settings.tracking_enabled:
            tracking_dir_writable(settings.resolved_tracking_dir)
        store = open_store(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            lease_ttl_s=settings.turn_lease_ttl_s,
        )
        await store.initialize()
        chatbot = cls(settings, client=build_openai_client(settings), store=store)
        chatbot._warm_up()
        chatbot.relay.start()
        return chatbot

    def _warm_up(self) -> None:
        """Pay one-time costs (lazy SDK modules, Burr's first build) before the first user does."""
        _ = self.client.chat.completions
        self._builder("warm-up", "warm-up", tracker=None).with_state(
            chat_history=[]
        ).with_entrypoint(ENTRYPOINT).build()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.aclose()
        await self.client.close()
        await self.store.close()
        if self.tracking_writer is not None:
            await asyncio.to_thread(self.tracking_writer.close)

    # --- conversations ------------------------------------------------------------------
    async def history(self, project_id: str, app_id: str) -> list[ChatItem] | None:
        """The shown branch's chat history, or None when the conversation does not exist."""
        branch = await self.store.shown_branch(project_id, app_id)
        state = await self.store.load_state(project_id, branch)
        if state is not None:
            return list(state.get("chat_history", []))
        if await self.store.exists(project_id, app_id):
            return []
        return None

    async def history_view(self, project_id: str, app_id: str) -> list[HistoryItem] | None:
        """The shown branch's items with their versions marked (``Branching.history_view``)."""
        return await self.branching.history_view(project_id, app_id)

    async def versions(self, project_id: str, app_id: str, index: int) -> Versions:
        """The versions of item ``index`` of the shown branch (``Branching.versions``)."""
        return await self.branching.versions(project_id, app_id, index)

    async def switch_branch(
        self,
        project_id: str,
        app_id: str,
        *,
        index: int | None = None,
        version: int | None = None,
        branch: str | None = None,
    ) -> list[HistoryItem]:
        """Show another version or branch and answer its history (``Branching.switch``)."""
        return await self.branching.switch(
            project_id, app_id, index=index, version=version, branch=branch
        )

    async def create(self, project_id: str, app_id: str) -> bool:
        """Register a conversation; with tracking on, it also appears in Burr's UI at once."""
        created = await self.store.create(project_id, app_id)
        tracker = self._tracker(project_id)
        if tracker is not None:
            self._builder(project_id, app_id, tracker).with_state(chat_history=[]).with_entrypoint(
                ENTRYPOINT
            ).build()
            tracker.close()
            await asyncio.to_thread(self.tracking_writer.flush, 5.0)
        return created

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        """A page of a project's conversations, most recently active first, and the total."""
        return await self.store.list(project_id, limit, offset)

    async def delete(self, project_id: str, app_id: str) -> bool:
        """Delete a conversation, its stored states and its Burr tracking log.

        A reply running in this process is stopped first (kept as interrupted, then
        deleted with the rest); one running in another process makes this raise
        ``ConversationBusy``. False when there was nothing to delete.
        """
        await self._stop_here(project_id, app_id, CONVERSATION_DELETED)
        lease = await self.store.acquire_turn(project_id, app_id)
        try:
            deleted = await self.store.delete(project_id, app_id)
            if self.tracking_writer is not None:
                await asyncio.to_thread(self._delete_tracking, project_id, app_id)
        finally:
            await lease.release()
        return deleted

    def _delete_tracking(self, project_id: str, app_id: str) -> None:
        """Remove the tracking directories of a conversation's branches (blocking: a thread).

        By name rather than from the branch rows: a branch whose first turn was never
        stored has a directory but no row."""
        assert self.tracking_writer is not None
        self.tracking_writer.flush(5.0)
        project_dir = self.settings.resolved_tracking_dir / project_id
        for app_dir in [project_dir / app_id, *project_dir.glob(f"{app_id}{BRANCH_SEPARATOR}*")]:
            shutil.rmtree(app_dir, True)

    async def stop(self, project_id: str, app_id: str) -> TurnOutcome | None:
        """Stop the reply being written in a conversation, in this process or another one;
        its partial reply is kept.

        Returns the stopped turn's outcome, or None when no reply is being written. Raises
        ``ConversationBusy`` if the turn does not end in time.
        """
        reply = self.replies.get(project_id, app_id)
        if reply is not None and reply.turn is not None:
            return await self._stop_here(project_id, app_id)
        return await self.relay.stop(project_id, app_id)

    async def _stop_here(
        self, project_id: str, app_id: str, error: TurnError = REPLY_STOPPED
    ) -> TurnOutcome | None:
        """Stop the conversation's reply if this process is writing it (None if not)."""
        reply = self.replies.get(project_id, app_id)
        turn = reply.turn if reply is not None else None
        if turn is None:
            return None
        stopped = turn.stop(error)
        # Stopped now or ending anyway: either way wait until it is stored and unlocked.
        try:
            await asyncio.wait_for(turn.settled.wait(), 10)
        except TimeoutError:
            raise ConversationBusy() from None
        return turn.outcome if stopped else None

    def reply(self, project_id: str, app_id: str) -> Reply | None:
        """The conversation's running (or just finished) reply in this process, if any."""
        return self.replies.get(project_id, app_id)

    async def find_reply(self, project_id: str, app_id: str) -> Reply | None:
        """The conversation's current reply, running or just finished, wherever it is
        written: this process's own if it is running here, else through the relay."""
        reply = self.replies.get(project_id, app_id)
        if reply is not None and not reply.done:
            return reply
        return await self.relay.watch(project_id, app_id, reply)

    async def start_reply(self, project_id: str, app_id: str, prompt: str) -> Reply:
        """Begin a turn and run it to its end in a task of its own: readers come and go.

        Raises what ``begin_turn`` raises.
        """
        turn = await self.begin_turn(project_id, app_id, prompt)
        return self.replies.start(turn, self.spawn)

    async def start_branch(
        self, project_id: str, app_id: str, *, index: int, prompt: str | None
    ) -> Reply:
        """Fork a branch at item ``index`` and run its first turn, as ``start_reply`` runs a
        turn: ``prompt`` None regenerates the reply at ``index``, else edits the prompt
        there. Raises what ``begin_branch_turn`` raises."""
        turn = await self.begin_branch_turn(project_id, app_id, index=index, prompt=prompt)
        return self.replies.start(turn, self.spawn)

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
        conversation it names, if any; ``chatbot.conversations.continuation`` has the rules. The
        reply's ``app_id`` says where it went (possibly a new conversation; its turn may
        be a new branch's).
        """
        options = replace(options or TurnOptions(), seed=tuple(earlier))
        conversations = ChatbotConversations(self, project_id, prompt, options)
        turn = await begin_continuation(
            prompt, earlier, named, conversations, new_id=new_conversation_id
        )
        return self.replies.start(turn, self.spawn)

    def client_left(self, reply: Reply) -> None:
        """The client that started ``reply`` went away; only with on_disconnect=cancel
        does that end the turn (as interrupted, keeping the partial reply)."""
        if self.settings.on_disconnect == "cancel" and reply.turn is not None:
            reply.turn.stop(None, "interrupted")

    async def ping(self) -> None:
        """Readiness: one round trip to the database; raises when it does not answer."""
        await self.store.ping()

    def _builder(
        self, project_id: str, app_id: str, tracker: OffloopTrackingClient | None
    ) -> ApplicationBuilder:
        builder = (
            ApplicationBuilder()
            .with_graph(self.graph)
            .with_identifiers(app_id=app_id, partition_key=project_id)
        )
        if tracker is not None:
            builder = builder.with_tracker(tracker)
        return builder

    async def _load_app(
        self,
        project_id: str,
        app_id: str,
        tracker: OffloopTrackingClient | None,
        seed: ChatHistory | None = None,
    ) -> Application:
        """The conversation's Burr application at its latest stored state (Burr's own loading).

        A conversation with nothing stored starts from ``seed`` (empty by default).
        """
        return await (
            self._builder(project_id, app_id, tracker)
            .initialize_from(
                self.store,
                resume_at_next_action=False,
                default_state={"chat_history": seed if seed is not None else ChatHistory()},
                default_entrypoint=ENTRYPOINT,
            )
            .abuild()
        )

    async def begin_turn(
        self,
        project_id: str,
        app_id: str,
        prompt: str,
        options: TurnOptions | None = None,
    ) -> LiveTurn:
        """Take the conversation's lease and prepare its shown branch's Burr application
        for one prompt.

        ``options`` carry a stateless client's context (see ``TurnOptions``). Raises
        ``ConversationBusy`` when another turn of it is in progress anywhere.
        """
        started = time.perf_counter()
        self._check_capacity()
        lease = await self._acquire(project_id, app_id)
        tracker = None
        try:
            branch = await self.store.shown_branch(project_id, app_id)
            tracker = self._tracker(project_id)
            seed = as_history(options.seed) if options is not None and options.seed else None
            app = await self._load_app(project_id, branch, tracker, seed)
            if app.sequence_id is None:  # nothing stored yet: make sure it is listed
                await self.store.create(project_id, app_id)
        except BaseException:
            if tracker is not None:
                tracker.close()
            await lease.release()
            raise
        return self._live_turn(
            Turn(app, prompt, started=started, inputs=options.inputs() if options else None),
            project_id,
            app_id,
            lease,
            tracker,
            branch=branch,
        )

    async def begin_branch_turn(
        self,
        project_id: str,
        app_id: str,
        *,
        index: int,
        prompt: str | None,
        options: TurnOptions | None = None,
    ) -> LiveTurn:
        """``begin_turn`` for a new branch: fork the shown branch at item ``index`` (see
        ``chatbot.domain.branch_tree``) and prepare its first turn; ``prompt`` None regenerates the
        reply at ``index``, a prompt replaces the one at ``index``.

        Branching is a turn like any other: the same lease, limits and outcomes. The
        branch exists once its first turn is stored, and is then the one shown. Raises
        ``ConversationBusy``, ``ConversationNotFound``, ``BranchInputError`` (an index out
        of range or of the wrong role), and what ``begin_turn`` raises; nothing changes
        when it raises.
        """
        if prompt is None:
            return await self._begin_fork(
                project_id, app_id, lambda history: plan_regenerate(history, index), options
            )
        edited = prompt
        return await self._begin_fork(
            project_id, app_id, lambda history: plan_edit(history, index, edited), options
        )

    async def _begin_fork(
        self,
        project_id: str,
        app_id: str,
        plan_for: Callable[[Sequence[ChatItem]], ForkPlan],
        options: TurnOptions | None,
    ) -> LiveTurn:
        """``begin_turn``'s steps around ``Branching.fork``: the fork's first turn is a turn
        like any other (capacity, lease, ``LiveTurn``)."""
        started = time.perf_counter()
        self._check_capacity()
        lease = await self._acquire(project_id, app_id)
        try:
            fork = await self.branching.fork(project_id, app_id, plan_for)
        except BaseException:
            await lease.release()
            raise
        return self._live_turn(
            Turn(
                fork.app, fork.prompt, started=started, inputs=options.inputs() if options else None
            ),
            project_id,
            app_id,
            lease,
            fork.tracker,
            branch=fork.branch,
            new_branch=fork.new_branch,
        )

    def _check_capacity(self) -> None:
        if self.draining:
            self.metrics.rejected.labels("shutting_down").inc()
            raise ShuttingDown()
        if len(self.active_turns) >= self.settings.max_concurrent_streams:
            self.metrics.rejected.labels("overloaded").inc()
            raise Overloaded()

    def _live_turn(
        self,
        turn: Turn,
        project_id: str,
        app_id: str,
        lease: TurnLease,
        tracker: OffloopTrackingClient | None,
        *,
        branch: str | None = None,
        new_branch: NewBranch | None = None,
    ) -> LiveTurn:
        live = LiveTurn(
            turn,
            project_id=project_id,
            app_id=app_id,
            store=self.store,
            lease=lease,
            tracker=tracker,
            metrics=self.metrics,
            spawn=self.spawn,
            on_settled=self._turn_settled,
            branch_app_id=branch,
            new_branch=new_branch,
        )
        self.active_turns[(project_id, app_id)] = live
        self.live_turns.add(live)
        self.metrics.active_turns.set(len(self.active_turns))
        self._idle.clear()
        return live

    async def _acquire(self, project_id: str, app_id: str) -> TurnLease:
        """The conversation's lease; a database that cannot grant it is unavailable, not a bug."""
        try:
            return await self.store.acquire_turn(project_id, app_id)
        except (ConversationBusy, StoreUnavailable):
            raise
        except Exception as exc:
            logger.warning("could not take the turn lease of %s/%s: %s", project_id, app_id, exc)
            raise StoreUnavailable(str(exc)) from exc

    def _turn_settled(self, turn: LiveTurn) -> None:
        if self.active_turns.get((turn.project_id, turn.app_id)) is turn:
            del self.active_turns[(turn.project_id, turn.app_id)]
        self.metrics.active_turns.set(len(self.active_turns))
        if not self.active_turns:
            self._idle.set()

    async def drain(self, grace_s: float) -> None:
        """Stop taking turns, give in-flight ones ``grace_s`` to finish, then end the rest.

        Ended turns keep their partial reply (marked interrupted) and tell their client
        with a ``server_shutting_down`` error frame.
        """
        self.draining = True
        if self.active_turns:
            logger.info(
                "draining: %d repl(ies) in flight, %.1fs grace", len(self.active_turns), grace_s
            )
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except TimeoutError:
                logger.warning(
                    "ending %d repl(ies) still running after the grace period",
                    len(self.active_turns),
                )
                for turn in list(self.active_turns.values()):
                    turn.stop(SHUTTING_DOWN)
                try:
                    await asyncio.wait_for(self._idle.wait(), 10)
                except TimeoutError:
                    logger.error(
                        "%d turn(s) did not end after being stopped", len(self.active_turns)
                    )

    def _tracker(self, project_id: str) -> OffloopTrackingClient | None:
        if self.tracking_writer is None:
            return None
        return OffloopTrackingClient(
            project=project_id,
            storage_dir=self.settings.resolved_tracking_dir,
            writer=self.tracking_writer,
        )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task the process keeps track of and waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
