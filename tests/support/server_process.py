"""Start ``chatbot serve`` as a real process on a loopback port, as a user would.

The port is chosen by the kernel (``--port 0``) and read back from uvicorn's start-up line,
so parallel runs never race for a port. Output goes to a log file the failing test can show.

Tests get servers from the ``serve`` fixture (``serve_module`` for a module-wide server):
``serve(**overrides)`` starts one with its HOME, an environment that inherits nothing of the
developer's, ``upstream=fake`` to proxy the fake OpenAI upstream, and stops every server it
started when the test ends. ``start_server`` is the step it takes for each one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
CHATBOT = Path(sys.executable).with_name("chatbot")
_LISTENING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v0/streaming_chatbot"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, as in a crash."""
        self.stop(signal.SIGKILL)


def server_env(home: Path, **overrides: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHATBOT_", "OPENAI_", "BURR_"))
    }
    env.update(
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        # Never inherit a developer's .env: tests configure everything explicitly.
        CHATBOT_OFFLINE_PACE_MS="5",
        CHATBOT_CANNED_PACE_MS="2",
        # Burr's UI adds seconds to start-up; the tests about it turn it back on.
        CHATBOT_BURR_UI_ENABLED="false",
    )
    env.update(overrides)
    return env


def upstream_env(fake: FakeOpenAI) -> dict[str, str]:
    """The variables that point a server at the fake OpenAI upstream, with its model names."""
    return {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.base_url,
        "CHATBOT_CLASSIFIER_MODEL": "fake-classifier-1",
        "CHATBOT_CHAT_MODEL": "fake-chat-1",
    }


def start_server(
    home: Path,
    *extra_args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> ServerProcess:
    env = env if env is not None else server_env(home)
    log_path = home / f"server-{time.monotonic_ns()}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(CHATBOT), "serve", "--host", "127.0.0.1", "--port", "0", *extra_args],
        cwd=cwd or home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    base_url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            base_url = f"http://{match.group(1)}:{match.group(2)}"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    return ServerProcess(process, base_url, log_path, env)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start within {timeout}s:\n{log_path.read_text()}")


def run_server_expecting_exit(
    home: Path, env: dict[str, str], *extra_args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Run ``chatbot serve`` that is expected to refuse to start; returns its exit and output."""
    return subprocess.run(
        [str(CHATBOT), "serve", "--host", "127.0.0.1", "--port", "0", *extra_args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class StartServer(Protocol):
    """What the ``serve`` fixtures hand a test: start one more server, stopped at teardown."""

    def __call__(
        self,
        *extra_args: str,
        home: Path | None = None,
        upstream: FakeOpenAI | None = None,
        env: dict[str, str] | None = None,
        **overrides: str,
    ) -> ServerProcess: ...


class Servers:
    """The servers one test (or one module) started, so teardown stops every one of them.

    ``start`` builds the environment from ``server_env`` (or from ``env``, to restart a
    server exactly as it ran: ``serve(env=server.env)``), adds ``upstream_env`` when given an
    upstream, then ``overrides``. A server already stopped by the test is left alone.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[ServerProcess] = []

    def start(
        self,
        *extra_args: str,
        home: Path | None = None,
        upstream: FakeOpenAI | None = None,
        env: dict[str, str] | None = None,
        **overrides: str,
    ) -> ServerProcess:
        if home is None:  # a restart (``env=server.env``) runs where the server ran
            home = Path(env["HOME"]) if env is not None else self.home
        full = dict(env) if env is not None else server_env(home)
        if upstream is not None:
            full.update(upstream_env(upstream))
        full.update(overrides)
        server = start_server(home, *extra_args, env=full)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()
