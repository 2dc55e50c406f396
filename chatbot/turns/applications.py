"""The one place Burr applications are built: a turn's, a fork's, a new conversation's.

Every application runs the same graph, is identified by its branch's app id partitioned
by its project, is loaded through Burr's own ``initialize_from`` with the store as its
persister (so any process sharing the database can run any turn) and, with tracking on,
writes its steps for Burr's UI.
"""

from __future__ import annotations

from burr.core import Application, ApplicationBuilder
from burr.core.graph import Graph

from chatbot.domain.chat_items import ChatHistory
from chatbot.graph.builder import ENTRYPOINT
from chatbot.store import Boundary, ConversationStore
from chatbot.tracking.client import OffloopTrackingClient
from chatbot.tracking.logs import TrackingLogs


class _OneGraphBuilder(ApplicationBuilder):
    """Burr's builder for applications that all run one graph, built once.

    Burr's ``with_graph`` copies a graph's actions and transitions into the builder, whose
    ``build`` makes a new graph of them (its adjacency map included): once per turn, for a
    graph that never changes. This builder hands Burr the graph built at start-up instead,
    by overriding Burr's private ``_get_built_graph`` (Burr is pinned to one release; every
    turn of the suite goes through here).
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self._prebuilt = graph

    def _get_built_graph(self) -> Graph:
        return self._prebuilt


class ApplicationFactory:
    """Builds the Burr applications of this process's conversations."""

    def __init__(
        self, graph: Graph, store: ConversationStore, tracking: TrackingLogs | None
    ) -> None:
        self._graph = graph
        self._store = store
        self._tracking = tracking

    def tracker(self, project_id: str) -> OffloopTrackingClient | None:
        """A tracking client for one application, or None when tracking is off; whoever
        takes one closes it when the application is done."""
        return self._tracking.client(project_id) if self._tracking is not None else None

    async def load(
        self,
        project_id: str,
        app_id: str,
        tracker: OffloopTrackingClient | None,
        seed: ChatHistory | None = None,
    ) -> Application:
        """The branch's application at its latest stored state; a branch with nothing
        stored starts from ``seed`` (empty by default)."""
        return await (
            self._builder(project_id, app_id, tracker)
            .initialize_from(
                self._store,
                resume_at_next_action=False,
                default_state={"chat_history": seed if seed is not None else ChatHistory()},
                default_entrypoint=ENTRYPOINT,
            )
            .abuild()
        )

    async def fork(
        self,
        project_id: str,
        app_id: str,
        tracker: OffloopTrackingClient | None,
        parent: Boundary,
    ) -> Application:
        """A new branch's application, forked by Burr from ``parent``'s stored state (its
        tracker records the parent pointer, which Burr's UI shows)."""
        return await (
            self._builder(project_id, app_id, tracker)
            .initialize_from(
                self._store,
                resume_at_next_action=False,
                default_state={"chat_history": ChatHistory()},
                default_entrypoint=ENTRYPOINT,
                fork_from_app_id=parent.app_id,
                fork_from_partition_key=project_id,
                fork_from_sequence_id=parent.sequence_id,
            )
            .abuild()
        )

    async def announce(self, project_id: str, app_id: str) -> None:
        """With tracking on, log an empty application so that a conversation just created
        appears in Burr's UI at once, before its first turn."""
        tracker = self.tracker(project_id)
        if tracker is None or self._tracking is None:
            return
        self._empty(project_id, app_id, tracker).build()
        tracker.close()
        await self._tracking.flush()

    def warm_up(self) -> None:
        """Pay Burr's one-time costs of a first build before the first user does."""
        self._empty("warm-up", "warm-up", None).build()

    def _empty(
        self, project_id: str, app_id: str, tracker: OffloopTrackingClient | None
    ) -> ApplicationBuilder:
        return (
            self._builder(project_id, app_id, tracker)
            .with_state(chat_history=[])
            .with_entrypoint(ENTRYPOINT)
        )

    def _builder(
        self, project_id: str, app_id: str, tracker: OffloopTrackingClient | None
    ) -> ApplicationBuilder:
        builder = _OneGraphBuilder(self._graph).with_identifiers(
            app_id=app_id, partition_key=project_id
        )
        return builder.with_tracker(tracker) if tracker is not None else builder
