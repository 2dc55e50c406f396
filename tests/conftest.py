"""Shared fixtures: temporary homes, real server processes, the fake OpenAI upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.server_process import ServerProcess, Servers, StartServer


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME, so nothing is written to the real one."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for key in list(os.environ):
        if key.startswith(("CHATBOT_", "OPENAI_")):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    return _isolated_home


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def serve(home: Path) -> Iterator[StartServer]:
    """Start ``chatbot serve`` processes in this test's HOME; all are stopped after the test."""
    servers = Servers(home)
    try:
        yield servers.start
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def serve_module(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[StartServer]:
    """As ``serve``, for a server the tests of one module share, in a HOME of its own."""
    servers = Servers(tmp_path_factory.mktemp(f"{request.module.__name__.rpartition('.')[2]}-home"))
    try:
        yield servers.start
    finally:
        servers.stop_all()


@pytest.fixture
def offline_server(serve: StartServer) -> ServerProcess:
    """``chatbot serve`` with the embedded offline model."""
    return serve()


@pytest.fixture
def upstream_server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """``chatbot serve`` proxying the fake OpenAI-compatible upstream (stopped before it)."""
    return serve(upstream=fake_openai)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c
