"""Mounting Burr's UI must not instrument the openai SDK behind our back."""

from __future__ import annotations

import inspect

import openai.resources.chat.completions as completions

from server.app import create_app
from server.settings import ServerSettings


def _is_wrapped(cls: type, name: str) -> bool:
    """OpenTelemetry replaces SDK methods with wrapt proxies, which are not plain functions."""
    return not inspect.isfunction(cls.__dict__[name])


def test_mounting_burr_ui_leaves_the_openai_sdk_unpatched() -> None:
    app = create_app(ServerSettings(_env_file=None, burr_ui_enabled=True))
    assert any(getattr(route, "path", "") == "/burr" for route in app.routes)
    assert not _is_wrapped(completions.AsyncCompletions, "create")
    assert not _is_wrapped(completions.Completions, "create")
