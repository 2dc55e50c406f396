"""The servers under comparison: how each one is started and where it answers.

All of them serve ``POST /api/v0/streaming_chatbot/response/{project}/{app}`` and
are pointed at the same fake upstream through ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL``, with ``HOME`` set to a fresh temporary directory per start.
A target is driven through that route unless its ``protocol`` says otherwise:
``ours-v1`` is this same server driven through its OpenAI-compatible route.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import PYTHON, ROOT

CHATBOT = Path(PYTHON).parent / "chatbot"


def _uvicorn(app: str, *extra: str) -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *extra]

    return argv


def _ours(port: int) -> list[str]:
    return [str(CHATBOT), "serve", "--host", "127.0.0.1", "--port", str(port)]


def _bare_relay(app: str) -> Callable[[int], list[str]]:
    """Our hand-written relays run as lean as uvicorn goes: uvloop, httptools, no access log."""
    return _uvicorn(
        app, "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"
    )


def _ours_available() -> str | None:
    """None when ``chatbot serve`` exists in this venv, else why not."""
    if not CHATBOT.exists():
        return f"{CHATBOT} does not exist (run make setup-dev after the server lands)"
    try:
        r = subprocess.run(
            [str(CHATBOT), "serve", "--help"], capture_output=True, timeout=60, cwd=ROOT
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`chatbot serve --help` failed: {e}"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()[-1:]
        return f"`chatbot serve --help` exited {r.returncode}: {' '.join(tail)}"
    return None


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    argv: Callable[[int], list[str]]
    description: str
    available: Callable[[], str | None] = lambda: None
    # Every conversation's first turn is preceded by this call; it doubles as the readiness probe.
    create_path: str = "/api/v0/streaming_chatbot/create/bench/ready"
    # Accepts ``--workers N`` (several processes sharing the port).
    has_workers: bool = False
    # How the load generator talks to it (``bench.loadgen.PROTOCOLS``).
    protocol: str = "burr-ui"

    def command(self, port: int, workers: int = 1) -> list[str]:
        if workers == 1:
            return self.argv(port)
        if not self.has_workers:
            raise ValueError(f"{self.name} runs one process only")
        return [*self.argv(port), "--workers", str(workers)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "naive",
            "naive relay",
            _uvicorn("bench.servers.naive:app"),
            "FastAPI + one shared openai.AsyncOpenAI, StreamingResponse (uvicorn defaults)",
        ),
        Target(
            "lean",
            "lean relay",
            _bare_relay("bench.servers.lean:app"),
            "bare ASGI + shared httpx client + orjson, uvloop/httptools, no access log",
        ),
        Target(
            "floor",
            "floor (aiohttp relay)",
            _bare_relay("bench.servers.floor:app"),
            "bare ASGI + shared aiohttp session + orjson, uvloop/httptools, no access log",
        ),
        Target(
            "burr",
            "Burr example",
            _uvicorn("bench.servers.burr_example:app"),
            "burr.examples.streaming-fastapi router from the installed burr package",
        ),
        Target(
            "ours",
            "this server",
            _ours,
            "`chatbot serve` (default persistence and tracking)",
            available=_ours_available,
            has_workers=True,
        ),
        Target(
            "ours-v1",
            "this server (/v1 route)",
            _ours,
            "`chatbot serve` as `ours`, driven through POST /v1/chat/completions (stream: true)",
            available=_ours_available,
            protocol="v1",
        ),
    )
}

BASELINES = ("floor", "lean", "naive", "burr")
OURS = ("ours", "ours-v1")
"""This server, through each route the budgets hold it to."""
