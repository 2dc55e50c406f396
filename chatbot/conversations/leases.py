"""Taking a conversation's turn lease, as every write of a conversation does.

A database that cannot grant the lease is unavailable, not a bug: whatever it raised
becomes ``StoreUnavailable`` (a 503 and a retry), while ``ConversationBusy`` (another
turn holds it) passes as it is.
"""

from __future__ import annotations

import logging

from chatbot.domain.errors import QuotaExceeded
from chatbot.store import ConversationBusy, ConversationStore, StoreUnavailable, TurnLease
from chatbot.store.dialect import Work

logger = logging.getLogger(__name__)


async def take_lease(
    store: ConversationStore,
    project_id: str,
    conversation_id: str,
    *,
    first: Work[None] | None = None,
) -> TurnLease:
    """The conversation's lease; raises ``ConversationBusy`` or ``StoreUnavailable``, or
    ``QuotaExceeded`` from ``first`` (the owner's replies at once: ``chatbot.users.quotas``)."""
    try:
        return await store.acquire_turn(project_id, conversation_id, first=first)
    except (ConversationBusy, StoreUnavailable, QuotaExceeded):
        raise
    except Exception as exc:
        logger.warning(
            "could not take the turn lease of %s/%s: %s", project_id, conversation_id, exc
        )
        raise StoreUnavailable(str(exc)) from exc
