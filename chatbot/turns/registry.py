"""The turns running in this process, in one place: admission, replies, stop, drain, tasks.

A turn is admitted (``check_admission``: the process is not draining and runs fewer
than its maximum), registered once its conversation's lease is held (``admit``: a
``LiveTurn``) and started (``start``: its events go into a ``Reply`` that any number of
clients read). The registry keeps each conversation's reply, running or finished within
the retention window, and each running turn until it has settled (stored, unlocked).

A reply that another process writes is reached through ``OtherProcesses`` (the relay,
``chatbot.relay``): ``find`` and ``stop`` try this process first, then ask the others.
Every task a turn needs runs through ``spawn``, so shutdown can wait for all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import weakref
from collections.abc import Coroutine
from typing import Any, Literal, Protocol

from chatbot.domain.errors import REPLY_STOPPED, SHUTTING_DOWN, TurnError
from chatbot.domain.events import OUTCOMES, TurnCompleted, TurnOutcome
from chatbot.metrics import Metrics
from chatbot.store import ConversationBusy, ConversationStore, NewBranch, TurnLease
from chatbot.tracking.client import OffloopTrackingClient
from chatbot.turns.live_turn import LiveTurn
from chatbot.turns.replies import Reply, ReplyLog
from chatbot.turns.turn import Turn
from chatbot.users.quotas import Quotas

logger = logging.getLogger(__name__)

Key = tuple[str, str]
# How long a stop waits for the turn to be stored and unlocked before calling it busy.
STOP_WAIT_S = 10.0


class Overloaded(Exception):
    """This process already streams its configured maximum of replies."""

    code = "overloaded"


class ShuttingDown(Exception):
    """The server is draining before it stops; no new turn may start."""

    code = "server_shutting_down"


class OtherProcesses(Protocol):
    """Replies written by the other processes sharing the database (``chatbot.relay``)."""

    async def watch(
        self, project_id: str, conversation_id: str, here: Reply | None
    ) -> Reply | None:
        """The conversation's current reply wherever it is written; ``here`` is this
        process's finished one, if any."""
        ...

    async def stop(self, project_id: str, conversation_id: str) -> TurnOutcome | None:
        """Stop the reply another process is writing; None when none is written."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class TurnPolicy:
    """How this process runs turns: how many at once (``max_running``), how long a
    finished reply stays readable (``retention_s``), and whether a client that goes away
    ends its reply (``on_disconnect``)."""

    max_running: int
    retention_s: float
    on_disconnect: Literal["continue", "cancel"]


class TurnRegistry:
    """This process's running turns and their replies, by conversation."""

    def __init__(
        self,
        store: ConversationStore,
        metrics: Metrics,
        elsewhere: OtherProcesses,
        policy: TurnPolicy,
        quotas: Quotas | None = None,
    ) -> None:
        self.policy = policy
        # Where a completed turn's tokens are counted against its owner's day (None: they
        # are not: no daily limit).
        self._quotas = quotas
        self.draining = False
        self._store = store
        self._metrics = metrics
        self._elsewhere = elsewhere
        # Admitted turns until they have settled (what capacity and draining count).
        self._running: dict[Key, LiveTurn] = {}
        # Each conversation's reply: running, or finished within the retention window.
        self._replies: dict[Key, Reply] = {}
        # Every turn object still alive, finished or not: a leak shows up here first.
        self._objects: weakref.WeakSet[LiveTurn] = weakref.WeakSet()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        metrics.live_turn_objects.set_function(lambda: len(self._objects))
        metrics.replies_kept.set_function(lambda: len(self._replies))

    # --- admission ----------------------------------------------------------------------
    def check_admission(self) -> None:
        """Raise ``ShuttingDown`` or ``Overloaded`` when no new turn may start now."""
        if self.draining:
            self._metrics.rejected.labels("shutting_down").inc()
            raise ShuttingDown()
        if len(self._running) >= self.policy.max_running:
            self._metrics.rejected.labels("overloaded").inc()
            raise Overloaded()

    def admit(
        self,
        turn: Turn,
        project_id: str,
        conversation_id: str,
        lease: TurnLease,
        tracker: OffloopTrackingClient | None,
        *,
        branch: str | None = None,
        new_branch: NewBranch | None = None,
    ) -> LiveTurn:
        """Register a turn whose conversation lease is held: from now on it counts, and it
        stores its outcome and releases the lease however it ends."""
        live = LiveTurn(
            turn,
            project_id=project_id,
            conversation_id=conversation_id,
            store=self._store,
            lease=lease,
            tracker=tracker,
            metrics=self._metrics,
            spawn=self.spawn,
            on_settled=self._settled,
            branch_app_id=branch,
            new_branch=new_branch,
        )
        self._running[(project_id, conversation_id)] = live
        self._objects.add(live)
        self._metrics.active_turns.set(len(self._running))
        self._idle.clear()
        return live

    def _settled(self, turn: LiveTurn) -> None:
        key = (turn.project_id, turn.conversation_id)
        if self._running.get(key) is turn:
            del self._running[key]
        self._metrics.active_turns.set(len(self._running))
        if not self._running:
            self._idle.set()

    # --- replies ------------------------------------------------------------------------
    def start(self, turn: LiveTurn) -> Reply:
        """Run ``turn`` to its end in a task of its own, logging its events; returns at
        once. Readers come and go; the reply stays for the retention window."""
        reply = Reply(turn.project_id, turn.conversation_id, turn, ReplyLog(), secrets.token_hex(6))
        self._replies[(turn.project_id, turn.conversation_id)] = reply
        reply.task = self.spawn(self._run(reply))
        return reply

    async def _run(self, reply: Reply) -> None:
        log = reply.log
        turn = reply.turn
        assert turn is not None
        try:
            async for event in turn.events():
                if isinstance(event, OUTCOMES):
                    # Readers need what was said, not the state that was stored.
                    event = dataclasses.replace(event, state=None)
                    if self._quotas is not None and isinstance(event, TurnCompleted):
                        # Counted before the client hears the end: its next prompt sees it.
                        if event.usage is not None:
                            await self._quotas.spend(reply.project_id, event.usage)
                log.append(event)
        finally:
            log.finish()
            reply.turn = None
            asyncio.get_running_loop().call_later(self.policy.retention_s, self._forget, reply)

    def _forget(self, reply: Reply) -> None:
        key = (reply.project_id, reply.conversation_id)
        if self._replies.get(key) is reply:
            del self._replies[key]

    @property
    def replies_held(self) -> int:
        """Replies in this process's memory, running or finished (the relay's question:
        could anyone ask this process about anything)."""
        return len(self._replies)

    def reply(self, project_id: str, conversation_id: str) -> Reply | None:
        """The conversation's running (or just finished) reply in this process, if any."""
        return self._replies.get((project_id, conversation_id))

    async def find(self, project_id: str, conversation_id: str) -> Reply | None:
        """The conversation's current reply, running or just finished, wherever it is
        written: this process's own if it is running here, else through the others."""
        reply = self._replies.get((project_id, conversation_id))
        if reply is not None and not reply.done:
            return reply
        return await self._elsewhere.watch(project_id, conversation_id, reply)

    def client_left(self, reply: Reply) -> None:
        """The client that started ``reply`` went away; only with on_disconnect=cancel
        does that end the turn (as interrupted, keeping the partial reply)."""
        if self.policy.on_disconnect == "cancel" and reply.turn is not None:
            reply.turn.stop(None, "interrupted")

    # --- stop ---------------------------------------------------------------------------
    async def stop(self, project_id: str, conversation_id: str) -> TurnOutcome | None:
        """Stop the reply being written in a conversation, in this process or another one;
        its partial reply is kept.

        Returns the stopped turn's outcome, or None when no reply is being written. Raises
        ``ConversationBusy`` if the turn does not end in time.
        """
        reply = self._replies.get((project_id, conversation_id))
        if reply is not None and reply.turn is not None:
            return await self.stop_here(project_id, conversation_id)
        return await self._elsewhere.stop(project_id, conversation_id)

    async def stop_here(
        self, project_id: str, conversation_id: str, error: TurnError = REPLY_STOPPED
    ) -> TurnOutcome | None:
        """Stop the conversation's reply if this process is writing it (None if not)."""
        reply = self._replies.get((project_id, conversation_id))
        turn = reply.turn if reply is not None else None
        if turn is None:
            return None
        stopped = turn.stop(error)
        # Stopped now or ending anyway: either way wait until it is stored and unlocked.
        try:
            await asyncio.wait_for(turn.settled.wait(), STOP_WAIT_S)
        except TimeoutError:
            raise ConversationBusy() from None
        return turn.outcome if stopped else None

    # --- shutdown -----------------------------------------------------------------------
    async def drain(self, grace_s: float) -> None:
        """Stop taking turns, give in-flight ones ``grace_s`` to finish, then end the rest.

        Ended turns keep their partial reply (marked interrupted) and tell their client
        with a ``server_shutting_down`` error frame.
        """
        self.draining = True
        if not self._running:
            return
        logger.info("draining: %d repl(ies) in flight, %.1fs grace", len(self._running), grace_s)
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            logger.warning(
                "ending %d repl(ies) still running after the grace period", len(self._running)
            )
            for turn in list(self._running.values()):
                turn.stop(SHUTTING_DOWN)
            try:
                await asyncio.wait_for(self._idle.wait(), STOP_WAIT_S)
            except TimeoutError:
                logger.error("%d turn(s) did not end after being stopped", len(self._running))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task the process keeps track of and waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Wait for every task spawned here (turns, their storing, relay answers)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
