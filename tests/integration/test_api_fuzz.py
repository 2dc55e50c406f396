"""Schema-driven testing: the server and its OpenAPI document agree, and bad input is harmless.

Schemathesis generates requests for every operation from the server's own document and
runs every check it has on the answers, with its default settings (no configuration
file, no check excused): statuses, content types, headers and bodies as documented (each
event of a stream against its frame schema), valid input accepted, invalid input
refused, 405 with ``Allow`` for an undocumented method, 401 without the key when one is
set, and its stateful sequences (create, then read, then delete...). What depends on a
conversation's state (an item, a version that is not there) is a 404 or a 409, which
schemathesis accepts for valid input. The one hook (``schemathesis_hooks``) shapes
generated valid bodies where JSON Schema cannot (the last message is the prompt) and
excuses nothing. On top of that, invalid requests must store nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.server_process import (
    REPO,
    ServerProcess,
    StartServer,
)
from tests.support.snapshot import settled_snapshot

# Per operation and phase: enough to cross every documented constraint, a minute or so in all.
EXAMPLES_PER_OPERATION = 20
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = "tests.integration.schemathesis_hooks"
API_KEY = "fuzz-key"
API = "/api/v0/streaming_chatbot"
# Operations the run must cover (more may be documented).
CONTRACT = {
    ("POST", "/response/{project_id}/{app_id}"),
    ("POST", "/reply/{project_id}/{app_id}"),
    ("GET", "/history/{project_id}/{app_id}"),
    ("POST", "/create/{project_id}/{app_id}"),
    ("GET", "/stream/{project_id}/{app_id}"),
    ("POST", "/stop/{project_id}/{app_id}"),
    ("POST", "/regenerate/{project_id}/{app_id}"),
    ("POST", "/edit/{project_id}/{app_id}"),
    ("GET", "/branches/{project_id}/{app_id}"),
    ("POST", "/branches/{project_id}/{app_id}"),
    ("GET", "/conversations/{project_id}"),
    ("DELETE", "/conversations/{project_id}/{app_id}"),
    ("POST", "/session"),
    ("DELETE", "/session"),
    ("GET", "/info"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/chat"),
    ("GET", "/api/chat/{chat_id}/stream"),
    ("POST", "/chat"),
    ("GET", "/chat/{chat_id}/stream"),
}


# The offline model at full speed.
FAST = {"CHATBOT_OFFLINE_PACE_MS": "0", "CHATBOT_CANNED_PACE_MS": "0"}


@pytest.fixture(scope="module")
def fuzz_server(serve_module: StartServer) -> ServerProcess:
    return serve_module(**FAST)


@pytest.mark.parametrize("with_key", [False, True], ids=["open", "api-key"])
def test_schemathesis_finds_server_and_document_in_agreement(
    serve: StartServer, tmp_path: Path, with_key: bool
) -> None:
    server = serve(**FAST, **({"CHATBOT_API_KEY": API_KEY} if with_key else {}))
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        # Show what was sent: schemathesis hides any field named like a token otherwise.
        "--output-sanitize",
        "false",
    ]
    if with_key:
        command += ["--header", f"Authorization: Bearer {API_KEY}"]
    try:
        document = httpx.get(f"{server.base_url}/openapi.json").json()
        documented = {
            (m.upper(), p.removeprefix(API)) for p, item in document["paths"].items() for m in item
        }
        assert CONTRACT <= documented, CONTRACT - documented  # nothing to test is no pass
        run = subprocess.run(
            command,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]


def _operations(server: ServerProcess) -> list:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # the contract's routes and ours are all documented
    return operations


def _describe(case, response) -> str:
    return (
        f"{case.method} {case.formatted_path} {case.body!r}: {response.status_code} {response.text}"
    )


def test_invalid_requests_get_4xx_json_and_store_nothing(fuzz_server: ServerProcess) -> None:
    home = Path(fuzz_server.env["HOME"])
    fuzzed = set()
    for operation in _operations(fuzz_server):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(GenerationMode.NEGATIVE))
        def check(case) -> None:
            before = settled_snapshot(home)
            response = case.call(base_url=fuzz_server.base_url, timeout=30)
            assert response.status_code < 500, _describe(case, response)
            if response.status_code >= 400:
                assert response.json()["error"]["code"], _describe(case, response)
                assert settled_snapshot(home) == before, _describe(case, response)

        try:
            check()
        except Unsatisfiable:
            continue  # an operation with no inputs has no invalid form (e.g. /healthz)
        fuzzed.add([part for part in operation.path.split("/") if part[:1] not in ("", "{")][-1])
    assert {
        "response",
        "reply",
        "history",
        "create",
        "conversations",
        "regenerate",
        "edit",
        "branches",
    } <= fuzzed, fuzzed
