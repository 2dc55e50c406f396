"""The holder's side of the relay: answer what other processes ask about our replies.

One task per process. Each tick it writes the new events of every mirrored reply (one
statement for all of them), then, if this process holds any reply at all, reads the
pending signals (one query) and answers those about its conversations: a ``watch`` by
starting the reply's mirror (its backlog is written before the answer, so the reader
finds it) and naming the reply; a ``stop`` by taking it (before the stop releases the
turn's lease, so the asker knows to wait for the answer), stopping the reply here and
writing what was stopped. A process that holds no reply does nothing but sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import KW_ONLY, dataclass, field

import orjson

from chatbot.relay.batches import Mirror, rank
from chatbot.relay.event_codec import encode_event
from chatbot.relay.rows import RelayTable, Signal, WatchAnswer
from chatbot.store import ConversationBusy
from chatbot.turns.registry import TurnRegistry
from chatbot.turns.replies import Reply

logger = logging.getLogger(__name__)

# Signals older than this are left alone: whoever sent them has stopped waiting.
SIGNAL_WINDOW_S = 15.0
# How often an active process clears rows that processes which died left behind.
SWEEP_EVERY_S = 60.0


@dataclass(eq=False)
class RelayAnswerer:
    """Answers, for this process's replies (``turns``), what the others ask."""

    table: RelayTable
    turns: TurnRegistry
    _: KW_ONLY
    poll_s: float
    orphaned_after_s: float
    # Mirrors by reply id, kept until their reply's retention window has passed.
    mirrors: dict[str, Mirror] = field(default_factory=dict, init=False)
    # Signals this process has dealt with (id: when), so each is answered once.
    _handled: dict[int, float] = field(default_factory=dict, init=False)
    _last_sweep: float = field(default_factory=time.monotonic, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop answering; the mirrors' last events are written first, so readers elsewhere
        get the end of replies that this process ended while shutting down."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._write_mirrors(time.monotonic())

    async def _run(self) -> None:
        failing = False
        while True:
            await self.table.wait_for_change("signals", self.poll_s)
            try:
                await self.tick(time.monotonic())
            except Exception:
                # Once per outage, not once per poll.
                if not failing:
                    logger.warning("the reply relay cannot reach the database", exc_info=True)
                failing = True
            else:
                if failing:
                    logger.info("the reply relay reaches the database again")
                failing = False

    async def tick(self, now: float) -> None:
        await self._write_mirrors(now)
        await self._drop_expired_mirrors(now)
        if not self.turns.replies_held:
            return  # nothing here anyone could ask about
        for signal in await self.table.pending_signals(SIGNAL_WINDOW_S):
            if signal.id in self._handled:
                continue
            reply = self.turns.reply(signal.project_id, signal.app_id)
            if reply is None:
                continue  # another process's conversation, or nobody's
            if signal.kind == "watch":
                await self._answer_watch(signal, reply, now)
                self._handled[signal.id] = now
            elif reply.turn is not None:  # a stop, and the reply is still being written
                self._handled[signal.id] = now
                self.turns.spawn(self._answer_stop(signal, reply))
        self._forget_old_signals(now)
        if now - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = now
            await self.table.sweep(SWEEP_EVERY_S, self.orphaned_after_s)

    async def _write_mirrors(self, now: float) -> None:
        pending = [(m, b) for m in self.mirrors.values() if (b := m.next_batch()) is not None]
        if not pending:
            return
        await self.table.write_batches([batch for _, batch in pending])
        for mirror, batch in pending:
            mirror.written(batch, now)

    async def _drop_expired_mirrors(self, now: float) -> None:
        """A mirror lives as long as its reply does in memory: the retention window."""
        retention_s = self.turns.policy.retention_s
        expired = [
            m
            for m in self.mirrors.values()
            if m.finished_at is not None and now - m.finished_at >= retention_s
        ]
        if not expired:
            return
        await self.table.drop_mirrors(
            [(m.reply.project_id, m.reply.conversation_id, m.reply.id) for m in expired]
        )
        for mirror in expired:
            del self.mirrors[mirror.reply.id]

    async def _answer_watch(self, signal: Signal, reply: Reply, now: float) -> None:
        if reply.id not in self.mirrors:
            mirror = Mirror(reply)
            backlog = mirror.next_batch()
            assert backlog is not None  # a new mirror always has its first batch
            await self.table.write_batches([backlog])
            mirror.written(backlog, now)
            self.mirrors[reply.id] = mirror
        answer = WatchAnswer(reply.id, running=not reply.done, rank=rank(reply))
        await self.table.answer_watch(signal.id, answer)

    async def _answer_stop(self, signal: Signal, reply: Reply) -> None:
        """Take the stop, stop the reply, answer with what was stopped.

        Taken first: stopping releases the turn's lease before the answer can be written,
        and an asker that saw no lease and no taker would conclude that the turn ended by
        itself and answer "nothing to stop" for a reply this process is stopping.
        """
        try:
            await self.table.take_stop(signal.id, reply.id)
        except Exception:
            logger.warning("could not take a stop from another process", exc_info=True)
            self._handled.pop(signal.id, None)  # not stopped: the next tick tries again
            return
        try:
            outcome = await self.turns.stop_here(signal.project_id, signal.app_id)
        except ConversationBusy:
            return  # it did not end in time: the asker gives up, as a local stop would
        encoded = orjson.dumps(encode_event(outcome) if outcome is not None else None)
        try:
            await self.table.answer_stop(signal.id, encoded.decode())
        except Exception:
            logger.warning("could not answer a stop from another process", exc_info=True)

    def _forget_old_signals(self, now: float) -> None:
        for signal_id, at in list(self._handled.items()):
            if now - at > SIGNAL_WINDOW_S:
                del self._handled[signal_id]
