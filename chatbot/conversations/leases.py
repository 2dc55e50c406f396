"""Taking a conversation's turn lease, as every write of a conversation does, and storing
the turn a dead process left behind in it.

A database that cannot grant the lease is unavailable, not a bug: whatever it raised
becomes ``StoreUnavailable`` (a 503 and a retry), while ``ConversationBusy`` (another
turn holds it) passes as it is.

**Cut turns.** A turn is stored when it ends, by the process running it; one killed
mid-reply (SIGKILL, a machine lost) never ends it, and its reply's text was only in that
process's memory. What survives is the turn's lease row, which carries the turn's prompt
until the turn is stored (``chatbot.store.leases``: written by the statement that takes
the lease, so this costs a turn no round trip). Once the row expires, the next process
to take the conversation's lease gets that prompt back and stores the cut turn before
doing its own work: the prompt, then an error item saying the reply was lost
(``reply_lost``), on the branch the conversation shows, as a failed turn is stored.
Nothing is stored twice: the final write of every stored turn clears its row's prompt,
except the cut turn's own, which leaves the row the prompt of the turn that found it: a
process that dies after storing another's cut turn leaves its own to be stored as cut.
Every process also looks for such rows on a timer (``CutTurns``), so a conversation
nobody writes to again still shows, about one lease TTL after the death, that its last
reply was lost. A cut edit or regenerate (a new branch's first turn) is not recorded:
its branch never existed, and the branch shown stays as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from burr.core import State

from chatbot.database.dialect import Work
from chatbot.domain.chat_items import as_history, error_item, user_item
from chatbot.domain.errors import REPLY_LOST, QuotaExceeded
from chatbot.store import ConversationBusy, ConversationStore, StoreUnavailable, TurnLease

logger = logging.getLogger(__name__)


async def take_lease(
    store: ConversationStore,
    project_id: str,
    conversation_id: str,
    *,
    first: Work[None] | None = None,
    prompt: str | None = None,
) -> TurnLease:
    """The conversation's lease, any turn cut in it stored first; raises
    ``ConversationBusy`` or ``StoreUnavailable``, or ``QuotaExceeded`` from ``first`` (the
    owner's replies at once: ``chatbot.users.quotas``). ``prompt``: the turn's, if the
    lease is for one (see "Cut turns")."""
    try:
        lease = await store.acquire_turn(project_id, conversation_id, first=first, prompt=prompt)
    except (ConversationBusy, StoreUnavailable, QuotaExceeded):
        raise
    except Exception as exc:
        logger.warning(
            "could not take the turn lease of %s/%s: %s", project_id, conversation_id, exc
        )
        raise StoreUnavailable(str(exc)) from exc
    if lease.lapsed_prompt is not None:
        try:
            await store_cut_turn(store, project_id, conversation_id, lease.lapsed_prompt)
        except BaseException as exc:
            await lease.release()
            if isinstance(exc, Exception):
                logger.warning("could not store the cut turn of %s/%s", project_id, conversation_id)
                raise StoreUnavailable(str(exc)) from exc
            raise
    return lease


async def store_cut_turn(
    store: ConversationStore, project_id: str, conversation_id: str, prompt: str
) -> None:
    """Store the turn that answered ``prompt`` as lost, on the shown branch; the caller
    holds the lease that found ``prompt`` in the expired row."""
    branch = await store.shown_branch(project_id, conversation_id)
    loaded = await store.load(project_id, branch)
    if loaded is None:
        await store.create(project_id, conversation_id)
        values, sequence_id = {}, 0
    else:
        values, sequence_id = loaded["state"].get_all(), loaded["sequence_id"] + 1
    item = error_item(REPLY_LOST.message)
    history = as_history(values.get("chat_history")).plus(user_item(prompt), item)
    state = State({**values, "chat_history": history, "response": item})
    await store.save(project_id, branch, sequence_id, "decide_mode", state, "failed", cut_turn=True)
    logger.warning(
        "stored the turn of %s/%s that a dead process cut short: its reply was lost",
        project_id,
        conversation_id,
    )


class CutTurns:
    """Every ``every_s``, store the turns cut by processes that died, in any conversation.

    It only takes (and releases) the lease of each conversation an expired row names:
    ``take_lease`` stores what it finds there, as it does for any write."""

    def __init__(self, store: ConversationStore, every_s: float) -> None:
        self._store = store
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def store_all(self) -> None:
        """One look: store every cut turn found (one another process is storing is left)."""
        for project_id, conversation_id in await self._store.lapsed_turns():
            with contextlib.suppress(ConversationBusy):
                lease = await take_lease(self._store, project_id, conversation_id)
                await lease.release()

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.store_all()
            except Exception:
                logger.warning("could not look for turns cut by a dead process", exc_info=True)
