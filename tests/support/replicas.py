"""Replicas of ``chatbot serve`` on one PostgreSQL database, seen from outside.

A deployment test sends every request through its proxy; to know which replica did what
it reads what the replicas leave behind, never asks them directly:

* each replica's access log (``chatbot.access``, one line per finished request, with the
  client's address as the replica understood it);
* the turn lease rows in the database, whose ``holder`` names the process writing a
  conversation's reply (``host:pid``);
* the relay's mirror rows, which exist only once a process other than the holder has been
  asked for the reply (``chatbot.relay``: nothing is copied unless someone asks).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg

from tests.support.server_process import ServerProcess

# "... INFO    chatbot.access: 127.0.0.1 GET /healthz 200 ttfb=1.5ms ..."
_ACCESS = re.compile(r"chatbot\.access: (\S+) (\S+) (\S+) (\d+) ")


@dataclass(frozen=True)
class Access:
    client: str
    method: str
    path: str
    status: int


@dataclass
class Replica:
    name: str
    server: ServerProcess

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def address(self) -> str:
        """``host:port``, as the proxy's upstream lines name it."""
        return self.server.base_url.removeprefix("http://")

    @property
    def alive(self) -> bool:
        return self.server.process.poll() is None

    def log_mark(self) -> int:
        """Where the log ends now: ``accesses(since=mark)`` reads what comes after."""
        return len(self.server.log())

    def accesses(self, since: int = 0) -> list[Access]:
        found = _ACCESS.finditer(self.server.log()[since:])
        return [Access(m[1], m[2], m[3], int(m[4])) for m in found]


def served(
    replicas: list[Replica], method: str, path: str | re.Pattern[str], marks: dict[str, int]
) -> Counter[str]:
    """How many ``method path`` requests each replica finished since ``marks``."""
    counts: Counter[str] = Counter()
    for replica in replicas:
        for access in replica.accesses(marks.get(replica.name, 0)):
            matches = (
                path.fullmatch(access.path) if isinstance(path, re.Pattern) else access.path == path
            )
            if access.method == method and matches:
                counts[replica.name] += 1
    return counts


def marks(replicas: list[Replica]) -> dict[str, int]:
    return {replica.name: replica.log_mark() for replica in replicas}


def _query(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """One query, on a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread, where ``asyncio.run`` refuses to start another."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def lease_holder_pid(database_url: str, project_id: str, app_id: str) -> int | None:
    """The pid of the process whose live lease holds the conversation's turn, if any."""
    rows = _query(
        database_url,
        "SELECT holder FROM chatbot_turn_leases"
        " WHERE project_id = $1 AND app_id = $2 AND expires_at > now()",
        project_id,
        app_id,
    )
    return int(rows[0]["holder"].rpartition(":")[2]) if rows else None


def mirrored(database_url: str, project_id: str, app_id: str) -> bool:
    """Whether the holder has copied any of the conversation's reply out for another process."""
    rows = _query(
        database_url,
        "SELECT 1 FROM chatbot_reply_events WHERE project_id = $1 AND app_id = $2 LIMIT 1",
        project_id,
        app_id,
    )
    return bool(rows)


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; answers whether it held.

    The timeouts are generous: they bound a hang and are never what a test checks.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
