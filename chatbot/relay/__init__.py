"""Replies across processes: resume and stop a reply that another process is writing.

A reply lives in the memory of the process running its turn (``chatbot.turns.replies``). With
several processes on one database (``--workers``, several servers on one SQLite file,
PostgreSQL on many machines) a resume or a stop may reach another one. The relay lets
that one ask, through the database the deployment already has; no other service.

**Nothing is copied unless someone asks.** With one process, or when every request
reaches the process that runs its conversation, the relay writes nothing: a reply costs
no database write per token, only the one poll per interval below while replies are held.

- *Asking.* A process with no reply of the conversation in memory first asks the
  database whether any process could have one: a live turn lease, or a turn stored
  within the retention window. If not, the answer is "nothing runs" at once (204 / 409)
  and nothing is written. Otherwise it inserts a signal row (``watch`` or ``stop``).
- *Answering.* Every process runs one task (``answering``) that, while it holds any
  reply, reads the pending signals once per ``CHATBOT_RELAY_POLL_MS`` (one query for all
  its replies) and answers those about its conversations on the signal's own row.
  PostgreSQL's LISTEN/NOTIFY wakes it at once; SQLite's processes poll the file.
- *Watching.* The holder starts mirroring the reply: its backlog in one row, then the
  new events every poll interval in one row per reply (one statement for all replies),
  until the outcome. Batches, not one row per token, keep the table small; a reader
  elsewhere copies them into a local ``Reply`` (``following``), so it is read with the
  same SSE ids (``<reply id>.<index>``) and ``Last-Event-ID`` works across processes.
  The reader lags the writer by one or two poll intervals, and never misses or repeats
  an event: batches carry their index range and the copy skips what it has.
- *Stopping.* The holder takes the signal (marks it on its row), stops the reply as a
  local stop does (the partial reply is stored as interrupted, its readers get
  ``reply_stopped``) and writes the outcome in the signal's row, so the asker answers
  exactly what the local route would. Stopping releases the turn's lease before the
  outcome is written; the take, written first, tells the asker to wait for it, where
  a lease gone with no taker means the turn ended by itself.

**Which reply.** Several processes may hold a reply of one conversation: the one being
written, and finished ones kept for the retention window where earlier turns ran. Each
answer carries a rank (later turn first, and of one turn the running reply), an answer
only replaces a lower one, and the asker waits a poll for the other holders before
taking a finished reply. A process's own finished reply stays the answer unless another
turn is running, or was stored after it, elsewhere.

**Bounded.** A mirror's rows are deleted when its reply leaves the holder's memory (the
retention window); signals by their asker once answered. Rows that a process which died
left behind are swept by the others. If the holder died, the watcher gets no answer
within 2 s (204) and a follower ends when the mirror stops growing and no lease holds
the conversation.

**Two sides, two objects.** ``Relay`` asks (the registry of running turns,
``chatbot.turns.registry``, calls it for the replies it does not hold); ``RelayAnswerer``
answers for the replies the registry holds. Neither knows the runtime.
"""

from __future__ import annotations

import logging

from chatbot.domain.events import TurnOutcome
from chatbot.relay.answering import RelayAnswerer
from chatbot.relay.following import RemoteReplies
from chatbot.relay.rows import RelayTable
from chatbot.store import ConversationBusy, StoreUnavailable
from chatbot.turns.replies import Reply

__all__ = ["Relay", "RelayAnswerer"]

logger = logging.getLogger(__name__)


class Relay:
    """The asking side: reach the replies other processes write (``OtherProcesses`` of
    ``chatbot.turns.registry``)."""

    def __init__(self, table: RelayTable, *, poll_s: float, retention_s: float) -> None:
        self.remote = RemoteReplies(table, poll_s=poll_s, retention_s=retention_s)

    async def aclose(self) -> None:
        await self.remote.aclose()

    async def watch(
        self, project_id: str, conversation_id: str, here: Reply | None
    ) -> Reply | None:
        """The conversation's current reply, wherever it is (see ``RemoteReplies.watch``).

        If the database cannot be asked, this process's own finished reply is the best
        answer there is; without one, raises ``StoreUnavailable``.
        """
        try:
            return await self.remote.watch(project_id, conversation_id, here)
        except Exception as exc:
            if here is not None:
                return here
            raise _unavailable(exc) from exc

    async def stop(self, project_id: str, conversation_id: str) -> TurnOutcome | None:
        """Stop the reply another process is writing; raises ``ConversationBusy`` when it
        does not confirm in time, ``StoreUnavailable`` when the database cannot be asked."""
        try:
            return await self.remote.stop(project_id, conversation_id)
        except ConversationBusy:
            raise
        except Exception as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> StoreUnavailable:
    logger.warning("could not ask the other processes about a reply: %s", exc, exc_info=True)
    return StoreUnavailable(str(exc))
