"""The database time of one turn, as the runtime spends it, on SQLite and PostgreSQL.

A turn takes the conversation's lease, reads its shown branch, loads its latest state
(what Burr's ``initialize_from`` asks), saves the turn (the group commit) and releases
the lease (in that commit, where the store can: ``save``'s ``ends_turn``). This times
those calls alone, with no model and no HTTP: sequentially (one turn at a time: each
call's round trips, and the process's CPU for them, its threads' included) and with
``--concurrency`` conversations at once (turns finishing together share a group commit).
It uses only the store's public interface, so it runs unchanged against an older checkout
(``PYTHONPATH=that/checkout``) to compare. Prints one JSON line per database.

Run: ``python -m bench.store_turn [--turns 200] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from burr.core import State

from chatbot.store import open_store

PROJECT = "bench"


def _history(turns: int) -> list[dict]:
    """A conversation of ``turns`` turns, replies of a realistic length."""
    items: list[dict] = []
    for n in range(turns):
        items.append({"role": "user", "content": f"question {n}: " + "why? " * 8, "type": "text"})
        items.append({"role": "assistant", "content": "because " * 120, "type": "text"})
    return items


def _final_write(store) -> dict:
    """``save``'s arguments for a turn's last write: older stores have no ``ends_turn``."""
    return {"ends_turn": True} if "ends_turn" in inspect.signature(store.save).parameters else {}


async def _turn(store, app_id: str, n: int) -> tuple[float, float]:
    """One turn's wall time and the process's CPU time for it."""
    started, cpu = time.perf_counter(), time.process_time()
    lease = await store.acquire_turn(PROJECT, app_id)
    try:
        branch = await store.shown_branch(PROJECT, app_id)
        loaded = await store.load(PROJECT, branch)
        if loaded is None:
            await store.create(PROJECT, app_id)
        state = State({"chat_history": _history(n + 1), "mode": "answer_question"})
        await store.save(
            PROJECT, branch, 2 * n + 1, "answer", state, "completed", **_final_write(store)
        )
    finally:
        await lease.release()
    return time.perf_counter() - started, time.process_time() - cpu


async def measure(database_url: str, turns: int, concurrency: int) -> dict:
    store = open_store(database_url)
    await store.initialize()
    try:
        for n in range(5):  # warm-up: connections, prepared statements, caches
            await _turn(store, "warm-up", n)
        timed = [await _turn(store, "one", n) for n in range(turns)]
        sequential, cpu = [wall for wall, _ in timed], [cpu for _, cpu in timed]
        rounds = max(1, turns // concurrency)
        started = time.perf_counter()
        for n in range(rounds):
            await asyncio.gather(*(_turn(store, f"c{i}", n) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    return {
        "database": database_url.split(":", 1)[0],
        "sequential_turn_ms_median": round(statistics.median(sequential) * 1000, 3),
        "sequential_turn_ms_mean": round(statistics.fmean(sequential) * 1000, 3),
        "sequential_turn_cpu_ms_mean": round(statistics.fmean(cpu) * 1000, 3),
        f"concurrent_{concurrency}_turns_per_s": round(rounds * concurrency / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres-url", help="a PostgreSQL database (else one is started)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        print(orjson.dumps(asyncio.run(measure(url, args.turns, args.concurrency))).decode())
    server = None
    url = args.postgres_url
    if url is None:
        from tests.support.postgres import start_postgres

        server = start_postgres()
        url = server.create_database()
    try:
        print(orjson.dumps(asyncio.run(measure(url, args.turns, args.concurrency))).decode())
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
