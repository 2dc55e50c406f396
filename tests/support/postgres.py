"""A real PostgreSQL server for the tests, started from the installed binaries.

``initdb`` makes a cluster in a fresh temporary directory, ``pg_ctl`` starts it on a free
loopback port with its socket in that directory, and the session ends by stopping it and
removing the directory. PostgreSQL refuses to run as root, so under root the binaries run
as the ``postgres`` user (``runuser``), which owns the directory.

Clients connect over TCP with password (SCRAM) authentication, as a deployment would: the
superuser to create a database per test, the ``chatbot`` role for the servers under test.

Without the binaries the tests that need PostgreSQL are skipped locally, but never in CI
(``CI`` set): there a missing PostgreSQL is an error.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

ROLE = "chatbot"
ROLE_PASSWORD = "chatbot-test-password"
_SUPERUSER = "postgres"
_SUPERUSER_PASSWORD = "superuser-test-password"


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed here."""


def _binaries() -> dict[str, str]:
    found: dict[str, str] = {}
    fallback_dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        path = shutil.which(name) or next(
            (f"{d}/{name}" for d in fallback_dirs if os.access(f"{d}/{name}", os.X_OK)), None
        )
        if path is None:
            raise PostgresMissing(f"{name} is not on PATH (install the PostgreSQL server)")
        found[name] = path
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    base_dir: Path
    port: int
    bins: dict[str, str]
    as_user: list[str]
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def url(self, database: str, user: str = ROLE, password: str = ROLE_PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, *statements: str) -> None:
        """Run statements as the superuser, each on its own (CREATE DATABASE needs that)."""

        async def run() -> None:
            conn = await asyncpg.connect(self.url("postgres", _SUPERUSER, _SUPERUSER_PASSWORD))
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())

    def create_database(self) -> str:
        """A new, empty database owned by the test role; answers its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url(name)

    def log(self) -> str:
        path = self.base_dir / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        subprocess.run(
            [*self.as_user, self.bins["pg_ctl"], "-D", str(self.data_dir), "-m", "fast", "-w"]
            + ["stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bins = _binaries()
    as_user: list[str] = []
    base_dir = Path(tempfile.mkdtemp(prefix="chatbot-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base_dir, "postgres", "postgres")
    pwfile = base_dir / "superuser-password"
    pwfile.write_text(_SUPERUSER_PASSWORD + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")

    def run(*args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*as_user, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    run(
        bins["initdb"],
        "-D",
        str(base_dir / "data"),
        "-U",
        _SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    )
    last_error: Exception | None = None
    for _ in range(3):  # another process may grab the port between choosing and binding it
        server = PostgresServer(base_dir, _free_port(), bins, as_user)
        options = (
            f"-p {server.port} -k {base_dir} -c listen_addresses=127.0.0.1 "
            # The tests crash chatbot servers, never PostgreSQL: its fsyncs only cost time.
            "-c fsync=off -c max_connections=200"
        )
        try:
            run(
                bins["pg_ctl"],
                "-D",
                str(server.data_dir),
                "-l",
                str(base_dir / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
        except RuntimeError as exc:
            last_error = RuntimeError(f"{exc}\n{server.log()}")
            continue
        atexit.register(server.stop)
        server.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
        return server
    shutil.rmtree(base_dir, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {last_error}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (each test makes its own database)."""
    try:
        server = start_postgres()
    except PostgresMissing as exc:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL server binaries not found: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh database on the session's PostgreSQL server."""
    return postgres_server.create_database()
