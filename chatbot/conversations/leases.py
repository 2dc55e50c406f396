"""Taking a conversation's turn lease, as every write of a conversation does.

A database that cannot grant the lease is unavailable, not a bug: whatever it raised
becomes ``StoreUnavailable`` (a 503 and a retry), while ``ConversationBusy`` (another
turn holds it) passes as it is.
"""

from __future__ import annotations

import logging

from chatbot.store import ConversationBusy, ConversationStore, StoreUnavailable, TurnLease

logger = logging.getLogger(__name__)


async def take_lease(store: ConversationStore, project_id: str, conversation_id: str) -> TurnLease:
    """The conversation's lease; raises ``ConversationBusy`` or ``StoreUnavailable``."""
    try:
        return await store.acquire_turn(project_id, conversation_id)
    except (ConversationBusy, StoreUnavailable):
        raise
    except Exception as exc:
        logger.warning(
            "could not take the turn lease of %s/%s: %s", project_id, conversation_id, exc
        )
        raise StoreUnavailable(str(exc)) from exc
