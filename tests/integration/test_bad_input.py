"""Bad input gets a clear 4xx JSON error and changes nothing, anywhere."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server_process import ServerProcess, StartServer
from tests.support.snapshot import settled_snapshot, storage_snapshot

MAX_PROMPT = 200
MAX_BODY = 4096


@pytest.fixture(scope="module")
def server(serve_module: StartServer) -> ServerProcess:
    process = serve_module(
        CHATBOT_MAX_PROMPT_CHARS=str(MAX_PROMPT),
        CHATBOT_MAX_BODY_BYTES=str(MAX_BODY),
        CHATBOT_OFFLINE_PACE_MS="0",
        CHATBOT_CANNED_PACE_MS="0",
    )
    with httpx.Client() as client:  # one good turn, so there is state that must not change
        client.post(f"{process.api}/reply/proj/existing", json={"prompt": "What is Burr?"})
    return process


@pytest.fixture
def unchanged(server: ServerProcess) -> Iterator[None]:
    home = Path(server.env["HOME"])
    before = settled_snapshot(home)
    yield
    assert storage_snapshot(home) == before


JSON = {"Content-Type": "application/json"}
CASES = [
    # (name, method, path, headers, body, status, code)
    (
        "malformed json",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": ',
        400,
        "invalid_json",
    ),
    ("json array", "POST", "/response/proj/existing", JSON, b'["hi"]', 422, "invalid_request"),
    (
        "wrong content type",
        "POST",
        "/response/proj/existing",
        {"Content-Type": "text/plain"},
        b'{"prompt": "hi"}',
        415,
        "unsupported_media_type",
    ),
    (
        "form content type",
        "POST",
        "/reply/proj/existing",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"prompt=hi",
        415,
        "unsupported_media_type",
    ),
    ("missing prompt", "POST", "/response/proj/existing", JSON, b"{}", 422, "invalid_request"),
    (
        "null prompt",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": null}',
        422,
        "invalid_request",
    ),
    (
        "number prompt",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": 42}',
        422,
        "invalid_request",
    ),
    (
        "list prompt",
        "POST",
        "/reply/proj/existing",
        JSON,
        b'{"prompt": ["a"]}',
        422,
        "invalid_request",
    ),
    (
        "empty prompt",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": ""}',
        422,
        "empty_prompt",
    ),
    (
        "whitespace prompt",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": " \\n\\t "}',
        422,
        "empty_prompt",
    ),
    (
        "prompt too long",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": "' + b"x" * (MAX_PROMPT + 1) + b'"}',
        422,  # over the document's maxLength: a request the schema refuses
        "prompt_too_long",
    ),
    (
        "body too large",
        "POST",
        "/response/proj/existing",
        JSON,
        b'{"prompt": "' + b"x" * MAX_BODY + b'"}',
        413,
        "payload_too_large",
    ),
    (
        "app id too long",
        "POST",
        "/response/proj/" + "a" * 65,
        JSON,
        b'{"prompt": "hi"}',
        422,
        "invalid_request",
    ),
    (
        "project id too long",
        "POST",
        "/create/" + "p" * 65 + "/x",
        None,
        None,
        422,
        "invalid_request",
    ),
    ("dot dot", "POST", "/response/proj/..", JSON, b'{"prompt": "hi"}', 422, "invalid_request"),
    ("dot dot project", "POST", "/create/../x", None, None, 422, "invalid_request"),
    (
        "dot dot inside",
        "POST",
        "/response/proj/..a",
        JSON,
        b'{"prompt": "hi"}',
        422,
        "invalid_request",
    ),
    ("encoded slash", "POST", "/response/proj/a%2Fb", JSON, b'{"prompt": "hi"}', 404, "not_found"),
    ("encoded dot dot", "POST", "/create/proj/%2E%2E", None, None, 422, "invalid_request"),
    ("backslash", "POST", "/create/proj/a%5Cb", None, None, 422, "invalid_request"),
    ("nul byte", "POST", "/response/proj/a%00b", JSON, b'{"prompt": "hi"}', 422, "invalid_request"),
    ("newline", "POST", "/create/proj/a%0Ab", None, None, 422, "invalid_request"),
    ("escape char", "GET", "/history/proj/a%1Bb", None, None, 422, "invalid_request"),
    ("zero-width space", "POST", "/create/proj/a%E2%80%8Bb", None, None, 422, "invalid_request"),
    ("non-breaking space", "POST", "/create/%C2%A0/x", None, None, 422, "invalid_request"),
    ("space", "POST", "/create/proj/a%20b", None, None, 422, "invalid_request"),
    ("dot", "POST", "/create/proj/a.b", None, None, 422, "invalid_request"),
    ("tilde", "POST", "/create/~root/x", None, None, 422, "invalid_request"),
    (
        "list limit too big",
        "GET",
        "/conversations/proj?limit=100000",
        None,
        None,
        422,
        "invalid_request",
    ),
    (
        "list negative offset",
        "GET",
        "/conversations/proj?offset=-1",
        None,
        None,
        422,
        "invalid_request",
    ),
    (
        "delete unknown",
        "DELETE",
        "/conversations/proj/nobody",
        None,
        None,
        404,
        "conversation_not_found",
    ),
    ("unknown route", "GET", "/nothing/here", None, None, 404, "not_found"),
    ("unknown route, other method", "PUT", "/nothing/here", None, None, 404, "not_found"),
    ("wrong method", "GET", "/response/proj/existing", None, None, 405, "method_not_allowed"),
]

# A path that exists answers a method it does not take with 405 and the methods it does.
WRONG_METHODS = [
    ("PUT", "/api/v0/streaming_chatbot/info", "GET"),
    ("DELETE", "/api/v0/streaming_chatbot/info", "GET"),
    ("PUT", "/api/v0/streaming_chatbot/session", "DELETE, POST"),
    ("GET", "/api/v0/streaming_chatbot/session", "DELETE, POST"),
    ("GET", "/api/v0/streaming_chatbot/reply/proj/existing", "POST"),
    ("PATCH", "/api/v0/streaming_chatbot/history/proj/existing", "GET"),
    ("POST", "/api/v0/streaming_chatbot/conversations/proj/existing", "DELETE"),
    ("PUT", "/healthz", "GET"),
    ("POST", "/metrics", "GET"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    server: ServerProcess,
    unchanged: None,
    method: str,
    path: str,
    headers: dict | None,
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    # http.client sends the path verbatim (httpx would resolve the `..` segments itself).
    url = httpx.URL(server.api)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=10)
    try:
        connection.request(method, url.path + path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    assert response.status == status, payload
    assert response.getheader("content-type").startswith("application/json")
    error = json.loads(payload)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize(("method", "path", "allow"), WRONG_METHODS)
def test_a_wrong_method_gets_405_with_the_methods_that_work(
    server: ServerProcess, unchanged: None, method: str, path: str, allow: str
) -> None:
    response = httpx.request(method, f"{server.base_url}{path}")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert method in error["message"] and allow in error["message"]


def test_chunked_body_over_the_limit_is_refused(server: ServerProcess, unchanged: None) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(f"{server.api}/response/proj/existing", headers=JSON, content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


ID_TEXT = st.text(min_size=0, max_size=80)
VALID_ID = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
PROMPTS = st.fixed_dictionaries({"prompt": st.text(max_size=MAX_PROMPT + 20)})
JSON_VALUES = PROMPTS | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)


def _post_verbatim(server: ServerProcess, path: str, body: bytes) -> tuple[int, bytes]:
    url = httpx.URL(server.api)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=30)
    try:
        connection.request("POST", url.path + path, body=body, headers=JSON)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(project=ID_TEXT | VALID_ID, app=ID_TEXT | VALID_ID, body=JSON_VALUES)
def test_any_request_is_answered_with_a_reply_or_4xx_json(
    server: ServerProcess, project: str, app: str, body: object
) -> None:
    """Whatever the IDs and the JSON body: a reply or a 4xx JSON error, never a 5xx;
    and a refused request stores nothing."""
    home = Path(server.env["HOME"])
    before = settled_snapshot(home)
    path = f"/reply/{quote(project, safe='')}/{quote(app, safe='')}"
    status, payload = _post_verbatim(server, path, json.dumps(body).encode())
    assert status < 500, payload
    if status >= 400:
        assert json.loads(payload)["error"]["code"]
        assert storage_snapshot(home) == before
    else:
        assert isinstance(body, dict) and isinstance(body.get("prompt"), str)
        assert body["prompt"].strip() and len(body["prompt"]) <= MAX_PROMPT
        assert json.loads(payload)["item"]["role"] == "assistant"
