"""Shared fixtures: temporary homes, real server processes, the fake OpenAI upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.server_process import ServerProcess, server_env, start_server


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
def offline_server(home: Path) -> Iterator[ServerProcess]:
    """``chatbot serve`` with the embedded offline model."""
    server = start_server(home)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream_server(home: Path, fake_openai: FakeOpenAI) -> Iterator[ServerProcess]:
    """``chatbot serve`` proxying the fake OpenAI-compatible upstream."""
    env = server_env(
        home,
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        CHATBOT_CLASSIFIER_MODEL="fake-classifier-1",
        CHATBOT_CHAT_MODEL="fake-chat-1",
    )
    server = start_server(home, env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c
