"""Schema-driven fuzzing of the OpenAPI spec: no input makes the server answer 5xx.

Schemathesis generates requests for every operation from the server's own OpenAPI
document. Valid requests may do anything but fail with 5xx; invalid ones must get a 4xx
JSON error and store nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.server_process import ServerProcess, server_env, start_server
from tests.support.snapshot import settled_snapshot

EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("fuzz-home")
    env = server_env(home, CHATBOT_OFFLINE_PACE_MS="0", CHATBOT_CANNED_PACE_MS="0")
    process = start_server(home, env=env)
    try:
        yield process
    finally:
        process.stop()


def _operations(server: ServerProcess) -> list:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # the contract's routes and ours are all documented
    return operations


def _describe(case, response) -> str:
    return (
        f"{case.method} {case.formatted_path} {case.body!r}: {response.status_code} {response.text}"
    )


def test_valid_requests_never_get_a_server_error(fuzz_server: ServerProcess) -> None:
    for operation in _operations(fuzz_server):

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None)
        @given(case=operation.as_strategy(GenerationMode.POSITIVE))
        def check(case) -> None:
            response = case.call(base_url=fuzz_server.base_url, timeout=30)
            assert response.status_code < 500, _describe(case, response)

        check()


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
    assert {"response", "reply", "history", "create", "conversations"} <= fuzzed, fuzzed
