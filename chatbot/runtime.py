"""The composition root: builds the process's parts once, wires them, and closes them.

``Chatbot.start`` opens the store (creating its schema), builds the shared upstream
client, the metrics, the graph, the tracking logs and the one Burr application factory,
then the parts that use them, each given what it needs:

- ``turns`` (``chatbot.turns.registry``): the running turns and their replies;
  admission, stop, drain, and the tasks shutdown waits for;
- ``conversations`` (``chatbot.conversations.service``): everything routes do with
  conversations (create, read, list, delete, branches, turns);
- the relay (``chatbot.relay``): replies across processes, asked by ``turns`` and
  answered for ``turns``;
- ``api_keys`` and ``quotas`` (``chatbot.users``): the per-user keys the HTTP layer
  checks, and the limits turns are admitted under;
- ``cut_turns`` (``chatbot.conversations.leases``): storing the turns of processes that
  died mid-reply, once their leases lapse.

Nothing else happens here: no route calls into this module but to reach those parts.
"""

from __future__ import annotations

import gc

import openai

from chatbot.conversations.forks import (
    ConversationNotFound,
    HistoryItem,
    ItemVersion,
    Version,
    Versions,
)
from chatbot.conversations.leases import CutTurns
from chatbot.conversations.service import ConversationService, new_conversation_id
from chatbot.graph.builder import build_graph
from chatbot.graph.burr_logging import quiet_expected_action_errors
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.metrics import Metrics
from chatbot.relay import Relay, RelayAnswerer
from chatbot.relay.rows import RelayTable
from chatbot.settings import Settings
from chatbot.store import ConversationStore, open_store
from chatbot.tracking.database import DatabaseSink
from chatbot.tracking.files import FileSink, tracking_dir_writable
from chatbot.tracking.logs import TrackingLogs
from chatbot.turns.applications import ApplicationFactory
from chatbot.turns.registry import Overloaded, ShuttingDown, TurnPolicy, TurnRegistry
from chatbot.users.api_keys import ApiKeys
from chatbot.users.quotas import QuotaLimits, Quotas

# What the routes catch or return, named where they meet the runtime.
__all__ = [
    "Chatbot",
    "ConversationNotFound",
    "HistoryItem",
    "ItemVersion",
    "Overloaded",
    "ShuttingDown",
    "Version",
    "Versions",
    "new_conversation_id",
]


class Chatbot:
    """One process's chatbot: its shared resources and the parts built on them."""

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
        self.metrics = Metrics()
        model = ChatModel.from_settings(client, settings, self.metrics)
        graph = build_graph(
            model,
            max_context_messages=settings.max_context_messages,
            canned_pace_s=settings.canned_pace_ms / 1000,
        )
        self.tracking = _tracking(settings, store)
        self.apps = ApplicationFactory(graph, store, self.tracking)
        poll_s = settings.relay_poll_ms / 1000
        self.relay_rows = relay_rows = RelayTable(store.dialect)
        self.relay = Relay(relay_rows, poll_s=poll_s, retention_s=settings.reply_retention_s)
        self.quotas = Quotas(
            store.dialect,
            QuotaLimits(
                prompts_per_minute=settings.user_prompts_per_minute,
                concurrent_replies=settings.user_concurrent_replies,
                tokens_per_day=settings.user_tokens_per_day,
            ),
        )
        self.turns = TurnRegistry(
            store,
            self.metrics,
            self.relay,
            TurnPolicy(
                max_running=settings.max_concurrent_streams,
                retention_s=settings.reply_retention_s,
                on_disconnect=settings.on_disconnect,
            ),
            quotas=self.quotas if settings.user_tokens_per_day else None,
        )
        self.relay_answerer = RelayAnswerer(
            relay_rows,
            self.turns,
            poll_s=poll_s,
            # No reply runs longer than its deadline: rows older than that and the
            # retention window were left by a process that died.
            orphaned_after_s=settings.upstream_reply_deadline_s + settings.reply_retention_s + 60,
        )
        self.metrics.relay_mirrors.set_function(lambda: len(self.relay_answerer.mirrors))
        self.metrics.relay_followed.set_function(lambda: len(self.relay.remote.followed))
        self.conversations = ConversationService(
            store, self.apps, self.turns, self.tracking, self.quotas
        )
        self.api_keys = ApiKeys(store.dialect)
        # Turns cut by a process that died are stored once its leases lapse: looked for
        # as often as leases are renewed.
        self.cut_turns = CutTurns(store, every_s=settings.turn_lease_ttl_s / 3)

    @classmethod
    async def start(cls, settings: Settings) -> Chatbot:
        """Open the store (creating its schema) and the shared client; fail loudly if impossible."""
        if settings.resolved_tracking == "file":
            tracking_dir_writable(settings.resolved_tracking_dir)
        store = open_store(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            lease_ttl_s=settings.turn_lease_ttl_s,
        )
        await store.initialize()
        chatbot = cls(settings, client=build_openai_client(settings), store=store)
        chatbot._warm_up()
        if chatbot.tracking is not None:
            chatbot.tracking.start()
        chatbot.relay_answerer.start()
        chatbot.cut_turns.start()
        return chatbot

    def _warm_up(self) -> None:
        """Pay one-time costs (lazy SDK modules, Burr's first build) before the first user does.

        Then freeze what start-up made: the modules, the graph, the engines live as long as
        the process, and a full collection walks every object the collector tracks (some
        200,000 by then: pauses of a quarter of a second on a slow core, mid-stream). Frozen,
        they are left out of it; later collections see only what serving made.
        """
        _ = self.client.chat.completions
        self.apps.warm_up()
        gc.collect()
        gc.freeze()

    async def aclose(self) -> None:
        """Wait for the turns' tasks, then close the relay, the client, the store, the logs."""
        await self.cut_turns.aclose()
        await self.turns.aclose()
        await self.relay.aclose()
        await self.relay_answerer.aclose()
        await self.client.close()
        if self.tracking is not None:  # its last batch may be written to the store
            await self.tracking.close()
        await self.store.close()


def _tracking(settings: Settings, store: ConversationStore) -> TrackingLogs | None:
    """Burr's tracking as configured: to the conversation database, to files, or none."""
    where = settings.resolved_tracking
    if where == "off":
        return None
    directory = settings.resolved_tracking_dir
    sink = DatabaseSink(store.dialect, directory) if where == "database" else FileSink(directory)
    return TrackingLogs(sink, settings.tracking_retention_days)
