"""The process-wide chatbot: shared client, graph, store and tracking, and the turns they run.

Built once at start-up (``Chatbot.start``) and closed at shutdown. Every turn loads the
conversation's latest stored state, so any process sharing the database can serve any
turn; nothing conversation-specific is cached in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import openai
from burr.core import ApplicationBuilder, State
from burr.core.application import PRIOR_STEP

from chatbot.chat_items import ChatItem
from chatbot.graph import ENTRYPOINT, build_graph
from chatbot.llm.chat_model import ChatModel
from chatbot.llm.client import build_openai_client
from chatbot.persistence import ConversationStore, open_store
from chatbot.settings import Settings
from chatbot.tracking import OffloopTrackingClient, TrackingWriter, tracking_dir_writable
from chatbot.turn import Turn

logger = logging.getLogger(__name__)


class Chatbot:
    def __init__(
        self,
        settings: Settings,
        *,
        client: openai.AsyncOpenAI,
        store: ConversationStore,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.model = ChatModel(
            client,
            classifier_model=settings.classifier_model,
            chat_model=settings.chat_model,
            classifier_max_retries=settings.classifier_max_retries,
        )
        self.graph = build_graph(
            self.model,
            max_context_messages=settings.max_context_messages,
            canned_pace_s=settings.canned_pace_ms / 1000,
        )
        self.tracking_writer = TrackingWriter() if settings.tracking_enabled else None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, settings: Settings) -> Chatbot:
        """Open the store (creating its schema) and the shared client; fail loudly if impossible."""
        if settings.tracking_enabled:
            tracking_dir_writable(settings.resolved_tracking_dir)
        store = open_store(settings.resolved_database_url)
        await store.initialize()
        return cls(settings, client=build_openai_client(settings), store=store)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
        await self.store.close()
        if self.tracking_writer is not None:
            await asyncio.to_thread(self.tracking_writer.close)

    # --- conversations ------------------------------------------------------------------
    async def history(self, project_id: str, app_id: str) -> list[ChatItem] | None:
        """The stored chat history, or None when the conversation does not exist."""
        state = await self.store.load_state(project_id, app_id)
        if state is not None:
            return list(state.get("chat_history", []))
        if await self.store.exists(project_id, app_id):
            return []
        return None

    async def create(self, project_id: str, app_id: str) -> bool:
        return await self.store.create(project_id, app_id)

    async def begin_turn(self, project_id: str, app_id: str, prompt: str) -> Turn:
        """Take the conversation's lease and prepare its Burr application for one prompt.

        Raises ``ConversationBusy`` when another turn of it is in progress anywhere.
        """
        started = time.perf_counter()
        lease = await self.store.acquire_turn(project_id, app_id)
        try:
            state = await self.store.load_state(project_id, app_id)
            if state is None:
                await self.store.create(project_id, app_id)
                state = State({"chat_history": []})
            else:
                state = state.wipe(delete=[PRIOR_STEP])  # every turn starts at `prompt`
            tracker = self._tracker(project_id)
            builder = (
                ApplicationBuilder()
                .with_graph(self.graph)
                .with_entrypoint(ENTRYPOINT)
                .with_state(state)
                .with_identifiers(app_id=app_id)
            )
            if tracker is not None:
                builder = builder.with_tracker(tracker)
            app = builder.build()
        except BaseException:
            await lease.release()
            raise
        return Turn(
            project_id=project_id,
            app_id=app_id,
            prompt=prompt,
            app=app,
            history=list(state["chat_history"]),
            store=self.store,
            lease=lease,
            tracker=tracker,
            spawn=self.spawn,
            started=started,
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
