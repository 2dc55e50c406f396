"""The asker's side of the relay: read, or stop, a reply another process is writing.

A reader gets an ordinary ``Reply`` whose log is a copy of the remote one, filled from
the mirrored batches by one follower task per reply (however many clients in this
process read it), so the routes read it exactly as they read a local reply, with the
same event ids. The copy skips the events it already has, so a batch read twice never
repeats a delta, and batches are read in index order from where the copy ends, so none
is missed. A follower ends with the reply's last batch, or when nobody is writing it
any more (its mirror is gone, or no lease has held the conversation for two checks in
a row: its process died). A reply whose writer died ends, for its readers, as
interrupted (``reply_lost``) with the text they were shown: the process that held it
could not store it, so the stored history keeps only the turns before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson

from chatbot.domain.chat_items import interrupted_item
from chatbot.domain.errors import REPLY_LOST
from chatbot.domain.events import OUTCOMES, StepStarted, TurnInterrupted, TurnOutcome
from chatbot.domain.modes import reply_item_type
from chatbot.relay.batches import apply_batch, turn_number
from chatbot.relay.event_codec import decode_event
from chatbot.relay.rows import Activity, RelayTable, WatchAnswer
from chatbot.store import ConversationBusy
from chatbot.turns.replies import Reply, ReplyLog

logger = logging.getLogger(__name__)

# How long a watcher waits for the holder of a reply to answer; past it, nobody holds one
# (its process died, or it was forgotten), and the reader is told nothing runs.
WATCH_ANSWER_WAIT_S = 2.0
# A stop's answer comes once the holder has stopped and stored the turn, which it waits
# up to 10 s for; a little more here.
STOP_ANSWER_WAIT_S = 12.0
# After this long with nothing new, make sure someone is still writing the reply.
QUIET_CHECK_S = 1.0
# Consecutive failed round trips after which a follower gives up on the database.
_MAX_FAILURES = 50

Key = tuple[str, str]


class RemoteReplies:
    def __init__(self, table: RelayTable, *, poll_s: float, retention_s: float) -> None:
        self._table = table
        self._poll_s = poll_s
        self._retention_s = retention_s
        # Remote replies still being written, by conversation, each with its follower.
        self.followed: dict[Key, Reply] = {}
        self._followers: set[asyncio.Task[None]] = set()
        # Watches under way: readers of one conversation arriving together share one.
        self._asking: dict[Key, asyncio.Future[Reply | None]] = {}

    async def aclose(self) -> None:
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)

    # --- watch --------------------------------------------------------------------------
    async def watch(
        self, project_id: str, conversation_id: str, here: Reply | None
    ) -> Reply | None:
        """The conversation's current reply, wherever it is being (or was lately) written.

        ``here`` is this process's finished reply of the conversation, if it has one: it is
        the answer unless a later turn has run, or is running, elsewhere.
        """
        key = (project_id, conversation_id)
        followed = self.followed.get(key)
        if followed is not None and not followed.done:
            return followed
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._find(project_id, conversation_id, here))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        # Shielded: a reader that leaves does not cancel the others' answer.
        return await asyncio.shield(asking)

    def _asked(self, key: Key, done: asyncio.Future[Reply | None]) -> None:
        self._asking.pop(key, None)
        if not done.cancelled():
            done.exception()  # seen here, so an error nobody awaited any more is not logged

    async def _find(
        self, project_id: str, conversation_id: str, here: Reply | None
    ) -> Reply | None:
        activity = await self._table.activity(project_id, conversation_id, self._retention_s)
        if here is not None and _still_current(here, activity):
            return here
        if not (activity.turn_running or activity.recently_stored):
            return None
        answer = await self._ask_watch(project_id, conversation_id)
        if answer is None:
            return None
        if here is not None and here.id == answer.reply_id:
            return here
        return await self._copy(project_id, conversation_id, answer.reply_id)

    async def _ask_watch(self, project_id: str, conversation_id: str) -> WatchAnswer | None:
        """The best answer to a watch signal: a reply being written at once, else the
        highest-ranked finished one, once the other holders have had a poll to answer."""
        signal_id = await self._table.add_signal(project_id, conversation_id, "watch")
        try:
            deadline = time.monotonic() + WATCH_ANSWER_WAIT_S
            settled_at: float | None = None
            while True:
                await self._table.wait_for_change("replies", self._poll_s)
                answer = await self._table.watch_answer(signal_id)
                now = time.monotonic()
                if answer is not None:
                    if answer.running:
                        return answer
                    if settled_at is None:
                        settled_at = now + 2 * self._poll_s
                if now >= deadline or (settled_at is not None and now >= settled_at):
                    return answer
        finally:
            await self._drop_signal(signal_id)

    async def _copy(self, project_id: str, conversation_id: str, reply_id: str) -> Reply | None:
        """A local copy of a mirrored reply, followed until its end; None if the mirror is
        gone already."""
        key = (project_id, conversation_id)
        reply = Reply(project_id, conversation_id, None, ReplyLog(), reply_id)
        batches = await self._table.read_batches(project_id, conversation_id, reply_id, 0)
        if not batches:
            return None
        for batch in batches:
            apply_batch(reply.log, batch)
        if reply.done:
            return reply
        followed = self.followed.get(key)
        if followed is not None and followed.id == reply_id and not followed.done:
            return followed  # another reader here started following it meanwhile
        self.followed[key] = reply
        task = asyncio.get_running_loop().create_task(self._follow(reply))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)
        return reply

    async def _follow(self, reply: Reply) -> None:
        log = reply.log
        key = (reply.project_id, reply.conversation_id)
        next_check = time.monotonic() + QUIET_CHECK_S
        writer_missing = failures = 0
        try:
            while not log.done:
                await self._table.wait_for_change("replies", self._poll_s)
                try:
                    batches = await self._table.read_batches(
                        reply.project_id, reply.conversation_id, reply.id, len(log.events)
                    )
                    grew = False
                    for batch in batches:
                        grew = apply_batch(log, batch) or grew
                    if grew:
                        next_check = time.monotonic() + QUIET_CHECK_S
                        writer_missing = 0
                    elif time.monotonic() >= next_check:
                        next_check = time.monotonic() + QUIET_CHECK_S
                        if not await self._writer_alive(reply):
                            writer_missing += 1
                            if writer_missing >= 2:
                                log.append(_lost(log))
                                return
                        else:
                            writer_missing = 0
                    failures = 0
                except ValueError:
                    logger.exception("a mirrored reply cannot be read; it ends here")
                    return
                except Exception:
                    failures += 1
                    if failures >= _MAX_FAILURES:
                        logger.warning("giving up on a remote reply", exc_info=True)
                        return
        finally:
            if not log.done:
                log.finish()
            if self.followed.get(key) is reply:
                del self.followed[key]

    async def _writer_alive(self, reply: Reply) -> bool:
        """Whether the reply's mirror is still there and a lease still holds its turn."""
        if not await self._table.mirror_exists(reply.project_id, reply.conversation_id, reply.id):
            return False
        return (await self._table.activity(reply.project_id, reply.conversation_id, 0)).turn_running

    # --- stop ---------------------------------------------------------------------------
    async def stop(self, project_id: str, conversation_id: str) -> TurnOutcome | None:
        """Have the process writing the conversation's reply stop it; answers what it
        stopped, or None when no reply was being written. Raises ``ConversationBusy``
        when the holder does not answer in time."""
        if not (await self._table.activity(project_id, conversation_id, 0)).turn_running:
            return None
        signal_id = await self._table.add_signal(project_id, conversation_id, "stop")
        try:
            deadline = time.monotonic() + STOP_ANSWER_WAIT_S
            next_check = time.monotonic() + QUIET_CHECK_S
            ended = 0
            while True:
                await self._table.wait_for_change("replies", self._poll_s)
                answer = await self._table.stop_answer(signal_id)
                if answer is not None and answer.outcome is not None:
                    return _outcome(answer.outcome)
                now = time.monotonic()
                if now >= deadline:
                    raise ConversationBusy(f"{project_id}/{conversation_id}")
                if answer is not None and answer.taken:
                    # Being stopped: the lease is released before the answer is written.
                    # The holder answers, or gives up before the deadline.
                    continue
                if now >= next_check:
                    next_check = now + QUIET_CHECK_S
                    running = (
                        await self._table.activity(project_id, conversation_id, 0)
                    ).turn_running
                    ended = 0 if running else ended + 1
                    # Read after the take (the loop reads the answer first, and a holder
                    # takes the stop before its lease goes): nobody is stopping it, the
                    # turn ended by itself.
                    if ended >= 2:
                        return None
        finally:
            await self._drop_signal(signal_id)

    async def _drop_signal(self, signal_id: int) -> None:
        # Left behind only if the database fails now; the holders' sweep removes it then.
        with contextlib.suppress(Exception):
            await self._table.drop_signal(signal_id)


def _lost(log: ReplyLog) -> TurnInterrupted:
    """The end of a reply whose writer died: interrupted, with the text read so far."""
    mode = next((e.action for e in log.events if isinstance(e, StepStarted)), None)
    text = "".join(e for e in log.events if type(e) is str)
    partial = interrupted_item(text, reply_item_type(mode)) if text else None
    return TurnInterrupted(partial, mode, REPLY_LOST)


def _still_current(here: Reply, activity: Activity) -> bool:
    """A finished reply of this process stays the answer unless another turn is running,
    or one was stored after it, elsewhere."""
    return not activity.turn_running and activity.stored_turns <= turn_number(here)


def _outcome(answer: str) -> TurnOutcome | None:
    value = orjson.loads(answer)
    if value is None:
        return None
    outcome = decode_event(value)
    if not isinstance(outcome, OUTCOMES):
        raise ValueError(f"a stop was answered with {outcome!r}")
    return outcome
