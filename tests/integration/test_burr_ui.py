"""Burr's own UI on the chatbot's port: its API sees every step, its demo reaches our router."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import post_prompt

PROJECT = "demo_streaming_chatbot"


@pytest.fixture
def burr_server(serve: StartServer) -> ServerProcess:
    return serve(CHATBOT_BURR_UI_ENABLED="true")


def _steps(client: httpx.Client, server: ServerProcess, app_id: str) -> list[dict]:
    response = client.get(f"{server.base_url}/burr/api/v0/{PROJECT}/{app_id}/__none__/apps")
    assert response.status_code == 200, response.text
    return response.json()["steps"]


def test_burr_ui_pages_are_served_under_burr(burr_server: ServerProcess, client: httpx.Client):
    assert client.get(f"{burr_server.base_url}/burr/ready").json() == {"ready": True}
    page = client.get(f"{burr_server.base_url}/burr/demos/streaming-chatbot")
    assert page.status_code == 200
    assert "window.__BURR_BASE_PATH__='/burr'" in page.text
    # The page's own script, at its mounted path (Burr's Vite build: /assets/index-<hash>.js).
    script = re.search(r'src="(/burr/assets/[^"]+\.js)"', page.text)
    assert script, page.text
    served = client.get(f"{burr_server.base_url}{script.group(1)}")
    assert served.status_code == 200
    assert "javascript" in served.headers["content-type"]
    assert "__BURR_BASE_PATH__" in served.text


def test_burr_without_a_slash_redirects_to_the_ui(burr_server: ServerProcess, client: httpx.Client):
    redirect = client.get(f"{burr_server.base_url}/burr?from=chat")
    assert redirect.is_redirect
    assert redirect.headers["location"] == "/burr/?from=chat"
    landed = client.get(f"{burr_server.base_url}/burr", follow_redirects=True)
    assert landed.status_code == 200
    assert str(landed.url) == f"{burr_server.base_url}/burr/"
    assert "window.__BURR_BASE_PATH__='/burr'" in landed.text
    # Only /burr itself: a path that merely starts with it is still the chat UI's 404.
    assert client.get(f"{burr_server.base_url}/burrow").status_code == 404


def test_demo_page_routes_reach_this_chatbot(burr_server: ServerProcess, client: httpx.Client):
    demo_api = f"{burr_server.base_url}/burr/api/v0/streaming_chatbot"
    assert client.post(f"{demo_api}/create/{PROJECT}/demo1").json() == "demo1"
    listed = client.get(f"{burr_server.base_url}/burr/api/v0/{PROJECT}/__none__/apps").json()
    assert "demo1" in [app["app_id"] for app in listed["applications"]]

    _, frames = post_prompt(client, demo_api, PROJECT, "demo1", "Write a poem about owls")
    # Only this chatbot sends an `end` frame naming the action; Burr's bundled example does not.
    assert frames[-1].type == "end" and frames[-1].value["mode"] == "generate_poem"
    assert "offline model" in frames[-1].value["item"]["content"]
    history = client.get(f"{demo_api}/history/{PROJECT}/demo1").json()
    assert [item["role"] for item in history] == ["user", "assistant"]


def test_tracking_api_shows_each_step_in_order_with_stream_timings(
    burr_server: ServerProcess, client: httpx.Client
) -> None:
    post_prompt(client, burr_server.api, PROJECT, "tracked", "What is a lighthouse?")
    post_prompt(client, burr_server.api, PROJECT, "tracked", "this is unsafe")
    steps = _steps(client, burr_server, "tracked")
    actions = [step["step_start_log"]["action"] for step in steps]
    assert actions == [
        "prompt",
        "check_safety",
        "decide_mode",
        "answer_question",
        "prompt",
        "check_safety",
        "unsafe_response",
    ]
    assert [step["step_start_log"]["sequence_id"] for step in steps] == list(range(7))
    streamed = [
        s for s in steps if s["step_start_log"]["action"] in ("answer_question", "unsafe_response")
    ]
    for step in streamed:
        events = {event["type"]: event for event in step["streaming_events"]}
        assert set(events) == {"begin_stream", "first_item_stream", "end_stream"}
        began = datetime.fromisoformat(events["begin_stream"]["stream_init_time"])
        first = datetime.fromisoformat(events["first_item_stream"]["first_item_time"])
        ended = datetime.fromisoformat(events["end_stream"]["end_time"])
        assert began <= first <= ended
        assert events["end_stream"]["items_streamed"] > 1
    # Each step's state shows the messages it added and the history's length after it.
    states = [step["step_end_log"]["state"] for step in steps]
    added = [[(i["role"], i["content"][:14]) for i in s["chat_history_added"]] for s in states]
    assert added == [
        [("user", "What is a ligh")],
        [],
        [],
        [("assistant", states[3]["response"]["content"][:14])],
        [("user", "this is unsafe")],
        [],
        [("assistant", states[6]["response"]["content"][:14])],
    ]
    assert [s["chat_history_length"] for s in states] == [1, 1, 1, 2, 3, 3, 4]
    assert "offline model" in states[3]["chat_history_added"][0]["content"]
    # The next turn's steps point to that reply instead of logging it again.
    assert states[4]["response"] == {"chat_history_item": 1}


def test_openai_path_with_burr_ui_mounted_logs_no_error(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client
) -> None:
    server = serve(upstream=fake_openai, CHATBOT_BURR_UI_ENABLED="true")
    try:
        for index in range(3):
            fake_openai.on_stream(Script(tokens=["streamed", " through", f" {index}"]))
            _, frames = post_prompt(client, server.api, PROJECT, "otel", f"question {index}?")
            assert frames[-1].type == "end"
            assert frames[-1].value["item"]["content"] == f"streamed through {index}"
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    assert " ERROR " not in log and "[ERROR]" not in log
    assert "instrument" not in log.lower()


def test_tracking_can_be_turned_off(home: Path, serve: StartServer, client: httpx.Client) -> None:
    server = serve(CHATBOT_TRACKING_ENABLED="false")
    try:
        _, frames = post_prompt(client, server.api, PROJECT, "untracked", "What is Burr?")
        assert frames[-1].type == "end"
    finally:
        server.stop()
    assert not (home / ".burr").exists()


def test_tracking_directory_is_configurable(
    home: Path, tmp_path: Path, serve: StartServer, client: httpx.Client
):
    elsewhere = tmp_path / "tracking-elsewhere"
    server = serve(CHATBOT_TRACKING_DIR=str(elsewhere))
    try:
        post_prompt(client, server.api, PROJECT, "moved", "What is Burr?")
    finally:
        server.stop()
    log = (elsewhere / PROJECT / "moved" / "log.jsonl").read_text()
    assert '"action":"decide_mode"' in log
    assert not (home / ".burr").exists()
