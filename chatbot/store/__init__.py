"""Conversation storage: one Burr persister over the database (``chatbot.database``).

``store`` is the store, written once for SQLite and PostgreSQL; ``branches`` and
``leases`` its rows beside Burr's states; ``base`` what the rest of the chatbot sees of it.
"""

from __future__ import annotations

# Re-exported (``X as X``): what the rest of the chatbot imports from the store.
from chatbot.database import SchemaTooNew as SchemaTooNew
from chatbot.database import StoreUnavailable as StoreUnavailable
from chatbot.database import dialect_for
from chatbot.domain.branch_tree import BranchRecord as BranchRecord
from chatbot.store.base import DEFAULT_LEASE_TTL_S
from chatbot.store.base import Boundary as Boundary
from chatbot.store.base import ConversationBusy as ConversationBusy
from chatbot.store.base import ConversationSummary as ConversationSummary
from chatbot.store.base import NewBranch as NewBranch
from chatbot.store.base import TurnLease as TurnLease
from chatbot.store.base import TurnLeaseLost as TurnLeaseLost
from chatbot.store.store import ConversationStore as ConversationStore


def open_store(
    database_url: str, *, pool_size: int | None = None, lease_ttl_s: float | None = None
) -> ConversationStore:
    """The store for a ``sqlite:///path`` or ``postgresql://…`` URL (not yet initialised);
    raises ``StoreUnavailable`` for any other. ``lease_ttl_s``: how long a crashed process's
    leases keep its conversations busy."""
    ttl = lease_ttl_s or DEFAULT_LEASE_TTL_S
    dialect = dialect_for(database_url, pool_size=pool_size, holder_ttl_s=ttl)
    return ConversationStore(dialect, lease_ttl_s=ttl)


async def check_store(database_url: str) -> tuple[str, list[int]]:
    """Open the database once before serving (migrating its schema) and close it again:
    where it is and the pids of other server processes using it. ``StoreUnavailable`` says
    what is wrong in one sentence (an error line and an exit status, not a traceback)."""
    store = open_store(database_url)
    await store.initialize()
    try:
        return store.where, await store.dialect.other_processes()
    finally:
        await store.close()
