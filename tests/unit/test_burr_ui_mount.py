"""Burr's UI under /burr: loaded on first use, without instrumenting the openai SDK."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import openai.resources.chat.completions as completions
from starlette.routing import Mount

from server.app import create_app
from server.burr_ui import LazyBurrUI
from server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]


def _is_wrapped(cls: type, name: str) -> bool:
    """OpenTelemetry replaces SDK methods with wrapt proxies, which are not plain functions."""
    return not inspect.isfunction(cls.__dict__[name])


def _burr_ui(app) -> LazyBurrUI:
    mounts = [r for r in app.routes if isinstance(r, Mount) and r.path == "/burr"]
    assert len(mounts) == 1
    assert isinstance(mounts[0].app, LazyBurrUI)
    return mounts[0].app


async def test_loading_burr_ui_leaves_the_openai_sdk_unpatched(tmp_path: Path) -> None:
    app = create_app(ServerSettings(_env_file=None, burr_ui_enabled=True, tracking_dir=tmp_path))
    ui = _burr_ui(app)
    assert not ui.loaded
    try:
        burr_app = await ui.load()
        assert ui.loaded and await ui.load() is burr_app  # built once
    finally:
        await ui.aclose()
    assert not _is_wrapped(completions.AsyncCompletions, "create")
    assert not _is_wrapped(completions.Completions, "create")


def test_building_the_app_imports_neither_burrs_ui_server_nor_pandas(tmp_path: Path) -> None:
    """What start-up imports, checked in a fresh interpreter (this one has loaded anything)."""
    probe = (
        "import sys\n"
        "from server.app import create_app\n"
        "from server.settings import ServerSettings\n"
        "create_app(ServerSettings(_env_file=None, burr_ui_enabled=True))\n"
        "import burr.core\n"
        "heavy = ['burr.tracking.server.run', 'pandas', 'numpy']\n"
        "print(' '.join(m for m in heavy if m in sys.modules) or 'none')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
