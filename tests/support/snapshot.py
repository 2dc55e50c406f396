"""What a server has stored, to compare before and after a request that must change nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatbot.database.tables import lease_holders

HOLDERS_TABLE = lease_holders.name

# Each server process renews its heartbeat row there on a timer, whatever the requests do.
_TIMER_TABLES = {HOLDERS_TABLE}


def storage_snapshot(home: Path) -> dict[str, object]:
    """Every tracking file (path and size) and every row of the SQLite database.

    Except the rows of the processes' heartbeats, which change with time, not requests.
    """
    tracking = home / ".burr"
    files = (
        {
            str(p.relative_to(home)): p.stat().st_size
            for p in sorted(tracking.rglob("*"))
            if p.is_file()
        }
        if tracking.exists()
        else {}
    )
    database = home / ".local" / "share" / "burr-chatbot" / "chatbot.sqlite3"
    rows: dict[str, list[tuple]] = {}
    if database.exists():
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            tables = [
                r[0]
                for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
                if r[0] not in _TIMER_TABLES
            ]
            for table in sorted(tables):
                rows[table] = sorted(connection.execute(f"SELECT * FROM {table}").fetchall())
    data_files = (
        sorted(
            p.name
            for p in (home / ".local" / "share" / "burr-chatbot").glob("*")
            if not p.name.endswith(("-wal", "-shm"))
        )
        if database.parent.exists()
        else []
    )
    return {"tracking": files, "rows": rows, "data_files": data_files}


def settled_snapshot(home: Path, attempts: int = 50) -> dict[str, object]:
    """A snapshot once background tracking writes of earlier turns have landed."""
    import time

    previous = storage_snapshot(home)
    for _ in range(attempts):
        time.sleep(0.02)
        current = storage_snapshot(home)
        if current == previous:
            return current
        previous = current
    return previous
