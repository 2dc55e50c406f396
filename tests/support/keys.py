"""Per-user keys made the way an operator makes them: ``chatbot keys …`` on the server's
database (the same HOME and environment), while the server runs."""

from __future__ import annotations

import subprocess

from tests.support.server_process import CHATBOT, ServerProcess


def keys_command(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHATBOT), "keys", *args],
        env=server.env,
        cwd=server.env["HOME"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_key(server: ServerProcess, user: str, *, admin: bool = False) -> str:
    """A new key for ``user``: the last line ``chatbot keys create`` prints."""
    made = keys_command(server, "create", "--user", user, *(["--admin"] if admin else []))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
