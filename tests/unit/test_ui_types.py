"""The UI's TypeScript types are the ones the current OpenAPI document generates.

ui/src/lib/openapi.d.ts is generated and committed; this regenerates it into a temporary
file with the UI's own npm script (the same dump and generator a developer runs) and
compares, so a change to a route or a schema that is not carried to the UI fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server_process import REPO

UI = REPO / "ui"
GENERATOR = UI / "node_modules" / ".bin" / "openapi-typescript"
COMMITTED = UI / "src" / "lib" / "openapi.d.ts"


def test_the_committed_ui_types_match_the_current_document(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or not GENERATOR.is_file():
        pytest.fail("the UI's dev dependencies are missing: run make ui-test (or cd ui && npm ci)")
    fresh = tmp_path / "openapi.d.ts"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OPENAPI_JSON": str(tmp_path / "openapi.json"),
        "OPENAPI_TYPES": str(fresh),
    }
    run = subprocess.run(
        [npm, "run", "--silent", "openapi:types"],
        cwd=UI,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert fresh.read_text() == COMMITTED.read_text(), (
        f"{COMMITTED.relative_to(REPO)} is stale: run `npm run openapi:types` in ui/ and commit it"
    )
