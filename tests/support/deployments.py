"""Two server processes on one database, as the relay tests need them: a client that reaches
the process of one's choice, and the relay's rows as the database holds them.

Three shapes of deployment: two ``chatbot serve`` processes on one SQLite file (one HOME),
``chatbot serve --workers 2`` (a client is pinned to a worker by the connection the
kernel gave it, ``tests/support/workers.py``), and two servers on one PostgreSQL database
(a HOME each, as on two machines).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from chatbot.relay.rows import EVENTS_TABLE, SIGNALS_TABLE
from tests.support.server_process import ServerProcess
from tests.support.workers import client_port, clients_on_each_worker, serving_worker

RELAY_TABLES = (SIGNALS_TABLE, EVENTS_TABLE)


@dataclass
class Deployment:
    """Processes ``0`` and ``1`` of one deployment; ``client(n)`` reaches process ``n``."""

    name: str
    servers: list[ServerProcess]  # one per process, or the one supervisor of the workers
    workers: list[int] = field(default_factory=list)  # the worker pids, with --workers
    database_url: str | None = None  # PostgreSQL only
    sqlite_file: Path | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    def server(self, n: int) -> ServerProcess:
        return self.servers[0] if self.workers else self.servers[n]

    def api(self, n: int) -> str:
        return self.server(n).api

    def client(self, n: int) -> httpx.Client:
        """A new client whose requests reach process ``n``, one at a time.

        A fresh one per exchange: a response dropped half-read closes its connection, and
        with workers the next connection may go to either of them.
        """
        if self.workers:
            pid = self.workers[n]
            client = clients_on_each_worker(self.servers[0], [pid])[pid]
        else:
            client = httpx.Client(timeout=60)
        self._clients.append(client)
        return client

    def check_reached(self, response: httpx.Response, n: int) -> None:
        """Assert that an open response is served by process ``n``."""
        if self.workers:
            assert serving_worker(self.servers[0], client_port(response)) == self.workers[n]

    def relay_rows(self) -> int:
        """Rows in the relay's tables, read from outside the servers."""
        if self.database_url is not None:
            return asyncio.run(_postgres_count(self.database_url))
        assert self.sqlite_file is not None
        with sqlite3.connect(f"file:{self.sqlite_file}?mode=ro", uri=True) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in RELAY_TABLES
            )

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for server in self.servers:
            server.stop()


async def _postgres_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in RELAY_TABLES])
    finally:
        await conn.close()
