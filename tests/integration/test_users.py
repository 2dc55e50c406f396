"""Users (``CHATBOT_AUTH=keys``): keys from the command line, and conversations that are
their owner's alone on every route and protocol, against real server processes.

Alice and Bob both name a conversation ``first-chat``: they get two conversations, and
whatever Bob does with that name (read, continue, branch, switch, stop, resume, delete,
list) reaches only his, whichever protocol he uses. Alice's is checked unchanged after.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from websockets.sync.client import connect

from tests.integration.test_ai_sdk import run_client, script_replies
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.keys import bearer, create_key, keys_command
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import iter_frames, read_text

PROJECT = "p"
CHAT = "first-chat"
UI_PROJECT = "demo_streaming_chatbot"  # where /v1 and the AI SDK keep their chats


@dataclass
class Team:
    server: ServerProcess
    alice: str
    bob: str
    admin: str

    def get(self, key: str, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.server.api}{path}", headers=bearer(key), timeout=30, **kwargs)

    def post(self, key: str, path: str, body: object = None) -> httpx.Response:
        url = f"{self.server.api}{path}"
        return httpx.post(url, json=body, headers=bearer(key), timeout=30)

    def respond(self, key: str, app: str, prompt: str, project: str = PROJECT):
        """``POST /response`` as ``key``'s user: the streamed response, to read its frames."""
        url = f"{self.server.api}/response/{project}/{app}"
        return httpx.stream("POST", url, json={"prompt": prompt}, headers=bearer(key), timeout=60)

    def history(self, key: str, app: str = CHAT, project: str = PROJECT) -> list[dict]:
        response = self.get(key, f"/history/{project}/{app}")
        assert response.status_code == 200, response.text
        return response.json()


def keyed_team(server: ServerProcess) -> Team:
    return Team(
        server,
        alice=create_key(server, "alice"),
        bob=create_key(server, "bob"),
        admin=create_key(server, "root", admin=True),
    )


@pytest.fixture(scope="module")
def team(serve_module: StartServer) -> Team:
    server = serve_module(CHATBOT_AUTH="keys", CHATBOT_BURR_UI_ENABLED="true")
    return keyed_team(server)


@pytest.fixture
def gated(fake_openai: FakeOpenAI, serve: StartServer) -> Team:
    """A team on a server whose upstream the test holds mid-reply."""
    return keyed_team(serve(upstream=fake_openai, CHATBOT_AUTH="keys"))


def texts(items: list[dict]) -> list[str]:
    return [item["content"] for item in items]


# --- keys from the command line ---------------------------------------------------------


def test_keys_are_made_listed_and_revoked_from_the_command_line_while_serving(
    team: Team,
) -> None:
    carol = create_key(team.server, "carol")
    assert carol.startswith("cbk_")
    assert team.get(carol, f"/conversations/{PROJECT}").json()["total"] == 0

    listed = keys_command(team.server, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert {"alice", "bob", "root", "carol"} <= rows.keys()
    assert rows["root"][2] == "yes" and rows["carol"][2] == "no"
    assert rows["carol"][-1] != "never"  # just used
    assert carol not in listed.stdout  # a key is shown once, when it is made

    revoked = keys_command(team.server, "revoke", "--user", "carol")
    assert revoked.returncode == 0 and "Revoked 1 key" in revoked.stdout
    refused = team.get(carol, f"/conversations/{PROJECT}")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert keys_command(team.server, "revoke", "--user", "carol").returncode == 1
    # A key that never was one, of the same shape, is refused alike.
    forged = "cbk_" + "A" * 43
    assert team.get(forged, f"/conversations/{PROJECT}").status_code == 401
    # A session cookie that is not one, in any bytes, is no session (and no server error).
    for cookie in (b'chatbot_session="\\351abc.def"', b"chatbot_session=\xe9t\xe9.x"):
        odd = httpx.get(f"{team.server.api}/conversations/{PROJECT}", headers={"Cookie": cookie})
        assert odd.status_code == 401, cookie


def test_a_key_can_be_revoked_by_its_id_and_ends_its_browser_sessions(team: Team) -> None:
    dave = create_key(team.server, "dave")
    with httpx.Client(base_url=team.server.api) as browser:
        assert browser.post("/session", headers=bearer(dave)).status_code == 204
        assert browser.get("/info").json()["user"] == {"id": "dave", "admin": False}
        assert browser.get(f"/conversations/{PROJECT}").status_code == 200
        key_id = next(
            line.split()[0]
            for line in keys_command(team.server, "list").stdout.splitlines()
            if line.split()[1] == "dave"
        )
        assert keys_command(team.server, "revoke", "--id", key_id).returncode == 0
        assert browser.get(f"/conversations/{PROJECT}").status_code == 401
        assert browser.get("/info").json()["user"] is None


def test_a_user_id_that_is_not_a_name_is_refused(team: Team) -> None:
    made = keys_command(team.server, "create", "--user", "../etc")
    assert made.returncode == 1
    assert "is not a user id" in made.stderr


# --- every route, for the user who does not own the conversation -------------------------


@pytest.fixture(scope="module")
def alices_chat(team: Team) -> list[dict]:
    """Alice's ``first-chat``: two turns, the second regenerated (two versions)."""
    for prompt in ("What is a river?", "Write a poem about a lake"):
        assert team.post(team.alice, f"/reply/{PROJECT}/{CHAT}", {"prompt": prompt}).is_success
    regenerated = team.post(team.alice, f"/regenerate/{PROJECT}/{CHAT}", {"index": 3})
    assert regenerated.status_code == 200, regenerated.text
    history = team.history(team.alice)
    assert len(history) == 4 and history[3]["branch"]["versions"] == 2
    return history


def test_another_users_conversation_is_not_found_on_every_route(
    team: Team, alices_chat: list[dict]
) -> None:
    bob, at = team.bob, f"{PROJECT}/{CHAT}"
    attempts = {
        "history": team.get(bob, f"/history/{at}"),
        "versions": team.get(bob, f"/branches/{at}", params={"index": 3}),
        "switch": team.post(bob, f"/branches/{at}", {"index": 3, "version": 0}),
        "switch by id": team.post(bob, f"/branches/{at}", {"app_id": f"{CHAT}~1"}),
        "edit": team.post(bob, f"/edit/{at}", {"index": 0, "prompt": "Bob's words?"}),
        "regenerate": team.post(bob, f"/regenerate/{at}", {"index": 1}),
        "stop": team.post(bob, f"/stop/{at}"),
        "delete": httpx.delete(f"{team.server.api}/conversations/{at}", headers=bearer(bob)),
    }
    for name, response in attempts.items():
        assert response.status_code == 404, (name, response.text)
        assert response.json()["error"]["code"] == "conversation_not_found", name
        # The same answer as for a conversation nobody has: nothing says whose it is.
        assert "alice" not in response.text, name
    assert team.get(bob, f"/stream/{at}").status_code == 204  # nothing of his runs there
    assert team.get(bob, f"/conversations/{PROJECT}").json()["items"] == []
    assert team.history(team.alice) == alices_chat


def test_the_same_id_names_each_users_own_conversation(team: Team, alices_chat: list[dict]) -> None:
    created = team.post(team.bob, f"/create/{PROJECT}/{CHAT}")
    assert created.status_code == 200, created.text
    assert team.history(team.bob) == []
    with team.respond(team.bob, CHAT, "Write a poem about Bob") as response:
        frames = list(iter_frames(response))
    # The history that opens the stream is Bob's: none of Alice's turns.
    assert frames[0].type == "chat_history" and frames[0].value == []
    assert frames[-1].type == "end"
    assert texts(team.history(team.bob))[0] == "Write a poem about Bob"
    listed = team.get(team.bob, f"/conversations/{PROJECT}").json()["items"]
    assert [c["app_id"] for c in listed] == [CHAT]
    assert team.history(team.alice) == alices_chat

    # Bob deletes his; Alice's stays.
    deleted = httpx.delete(
        f"{team.server.api}/conversations/{PROJECT}/{CHAT}", headers=bearer(team.bob)
    )
    assert deleted.status_code == 204
    assert team.get(team.bob, f"/history/{PROJECT}/{CHAT}").status_code == 404
    assert team.history(team.alice) == alices_chat


def test_burr_ui_and_metrics_are_for_admins(team: Team, alices_chat: list[dict]) -> None:
    base = team.server.base_url
    for path in ("/burr/api/v0/projects", "/metrics"):
        refused = httpx.get(base + path, headers=bearer(team.alice), timeout=30)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "forbidden"
        assert httpx.get(base + path, timeout=30).status_code == 401
        assert httpx.get(base + path, headers=bearer(team.admin), timeout=30).status_code == 200
    # Burr's demo page drives the chat through /burr/api too: admins only.
    demo = httpx.post(
        f"{base}/burr/api/v0/streaming_chatbot/create/{PROJECT}/x", headers=bearer(team.bob)
    )
    assert demo.status_code == 403
    # The admin sees every user's runs, each under its owner's project.
    projects = httpx.get(f"{base}/burr/api/v0/projects", headers=bearer(team.admin)).json()
    names = {project["name"] for project in projects}
    assert {f"{PROJECT}:alice"} <= names


def test_info_says_who_is_signed_in(team: Team) -> None:
    info = team.get(team.admin, "/info").json()
    assert info["auth_required"] is True
    assert info["user"] == {"id": "root", "admin": True}
    # Burr's links for the caller's conversations name the caller's own project.
    assert info["burr_app_url_template"] == (
        f"/burr/project/{UI_PROJECT}:root/{UI_PROJECT}:root/{{app_id}}"
    )
    assert httpx.get(f"{team.server.api}/info").json()["user"] is None


# --- /v1 with the openai SDK ---------------------------------------------------------------


def sdk(team: Team, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{team.server.base_url}/v1", api_key=key, max_retries=0)


def test_v1_continues_only_the_callers_own_conversations(team: Team) -> None:
    alice, bob = sdk(team, team.alice), sdk(team, team.bob)
    asked = [{"role": "user", "content": "What is a glacier?"}]
    first = alice.chat.completions.with_raw_response.create(
        model="burr-chatbot", messages=asked, extra_headers={"X-Conversation-Id": "v1-chat"}
    )
    answer = first.parse().choices[0].message.content
    assert first.headers["x-conversation-id"] == "v1-chat"

    # Bob names the same conversation three ways: the header, metadata, and Alice's
    # exact history (which would continue hers by history matching if it were his).
    continued = [*asked, {"role": "assistant", "content": answer}]
    continued.append({"role": "user", "content": "And a fjord?"})
    by_header = bob.chat.completions.with_raw_response.create(
        model="burr-chatbot",
        messages=[{"role": "user", "content": "Bob here?"}],
        extra_headers={"X-Conversation-Id": "v1-chat"},
    )
    assert by_header.headers["x-conversation-id"] == "v1-chat"
    by_metadata = bob.chat.completions.create(
        model="burr-chatbot",
        messages=[{"role": "user", "content": "Bob again?"}],
        metadata={"conversation_id": "v1-chat"},
    )
    assert by_metadata.choices[0].message.content
    by_history = bob.chat.completions.with_raw_response.create(
        model="burr-chatbot", messages=continued
    )
    assert by_history.headers["x-conversation-id"] != "v1-chat"

    assert texts(team.history(team.alice, "v1-chat", UI_PROJECT)) == [asked[0]["content"], answer]
    bobs = texts(team.history(team.bob, "v1-chat", UI_PROJECT))
    assert bobs[0::2] == ["Bob here?", "Bob again?"]

    # Alice's own history matching still finds hers.
    again = alice.chat.completions.with_raw_response.create(
        model="burr-chatbot", messages=continued
    )
    assert again.headers["x-conversation-id"] == "v1-chat"


def test_v1_refuses_a_revoked_key_in_openais_shape(team: Team) -> None:
    erin = create_key(team.server, "erin")
    assert sdk(team, erin).models.list().data
    keys_command(team.server, "revoke", "--user", "erin")
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(team, erin).models.list()
    assert refused.value.code == "invalid_api_key"


# --- WebSocket ------------------------------------------------------------------------------


def socket(team: Team, app: str, project: str = PROJECT, **kwargs):
    url = f"{team.server.api.replace('http://', 'ws://', 1)}/ws/{project}/{app}"
    return connect(url, proxy=None, **kwargs)


def socket_turn(ws, prompt: str) -> list[dict]:
    ws.send(json.dumps({"type": "prompt", "prompt": prompt}))
    frames = []
    while (frame := json.loads(ws.recv()))["type"] not in ("end", "error"):
        frames.append(frame)
    return [*frames, frame]


def test_a_socket_acts_for_its_keys_user(team: Team, alices_chat: list[dict]) -> None:
    with socket(team, CHAT, additional_headers=bearer(team.bob)) as ws:
        frames = socket_turn(ws, "Bob over a socket?")
    assert frames[0]["type"] == "chat_history" and frames[0]["value"] == []
    assert frames[-1]["type"] == "end"
    with socket(team, CHAT) as ws:  # the key as the first message
        ws.send(json.dumps({"type": "auth", "key": team.bob}))
        assert len(socket_turn(ws, "Bob once more?")[0]["value"]) == 2
    assert texts(team.history(team.bob))[0::2] == ["Bob over a socket?", "Bob once more?"]
    assert team.history(team.alice) == alices_chat


# --- a reply running: stop and resume are the owner's -------------------------------------


@pytest.fixture
def held_reply(gated: Team, fake_openai: FakeOpenAI) -> Iterator[tuple[Team, threading.Event]]:
    """Alice's reply in ``first-chat`` of the UI project (where the AI SDK's chats are too),
    held by the upstream after its first words."""
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["Held", " words", " end."], gate_after=1, gate=gate))
    with gated.respond(gated.alice, CHAT, "Tell me slowly?", UI_PROJECT) as response:
        frames = iter_frames(response)
        read_text(frames, "Held")
        try:
            yield gated, gate
        finally:
            gate.set()
        assert list(frames)[-1].type == "end"  # whatever the test did, it ended by itself


def test_another_user_cannot_stop_or_resume_a_running_reply(
    held_reply: tuple[Team, threading.Event],
) -> None:
    team, gate = held_reply
    assert team.post(team.bob, f"/stop/{UI_PROJECT}/{CHAT}").status_code == 404
    assert team.get(team.bob, f"/stream/{UI_PROJECT}/{CHAT}").status_code == 204
    with socket(team, CHAT, UI_PROJECT, additional_headers=bearer(team.bob)) as ws:
        ws.send(json.dumps({"type": "stop"}))
        refused = json.loads(ws.recv())
    assert refused["type"] == "error" and refused["value"]["code"] == "conversation_not_found"
    # The owner can reattach to it.
    with httpx.stream(
        "GET", f"{team.server.api}/stream/{UI_PROJECT}/{CHAT}", headers=bearer(team.alice)
    ) as resumed:
        assert resumed.status_code == 200
        gate.set()
        assert list(iter_frames(resumed))[-1].type == "end"
    assert texts(team.history(team.alice, CHAT, UI_PROJECT))[-1] == "Held words end."


# --- the AI SDK's client ------------------------------------------------------------------


def test_the_ai_sdk_chats_of_two_users_with_one_id_stay_apart(
    gated: Team, fake_openai: FakeOpenAI
) -> None:
    api = f"{gated.server.base_url}/api/chat"
    replies = []
    for user, key in (("alice", gated.alice), ("bob", gated.bob)):
        expected = script_replies(
            fake_openai,
            [
                {"mode": "answer_question", "tokens": [f"{user} one."]},
                {"mode": "answer_question", "tokens": [f"{user} two."]},
                {"mode": "answer_question", "tokens": [f"{user} again."]},
            ],
        )
        result = run_client(
            "conversation",
            {
                "api": api,
                "chatId": "sdk-chat",
                "prompts": [f"{user} asks?", f"{user} asks more?"],
                "replies": expected,
                "headers": bearer(key),
            },
        )
        replies.append(result["replies"])
    assert replies == [
        ["alice one.", "alice two.", "alice again."],
        ["bob one.", "bob two.", "bob again."],
    ]
    for user, key in (("alice", gated.alice), ("bob", gated.bob)):
        shown = texts(gated.history(key, "sdk-chat", UI_PROJECT))
        assert shown == [f"{user} asks?", f"{user} one.", f"{user} asks more?", f"{user} again."]
    # Bob's model requests carried none of Alice's turns.
    bobs = [r.body["messages"] for r in fake_openai.streamed_requests()[3:]]
    assert not any("alice" in m["content"] for asked in bobs for m in asked)


def test_the_ai_sdk_resumes_only_the_callers_own_reply(
    held_reply: tuple[Team, threading.Event],
) -> None:
    team, _ = held_reply
    api = f"{team.server.base_url}/api/chat"
    result = run_client(
        "nothingToResume", {"api": api, "chatId": CHAT, "headers": bearer(team.bob)}
    )
    assert result == {"resumed": None}
    # While Alice, whose reply it is, gets it.
    with httpx.stream("GET", f"{api}/{CHAT}/stream", headers=bearer(team.alice)) as hers:
        assert hers.status_code == 200


# --- data from before users --------------------------------------------------------------


def test_conversations_from_before_sign_in_stay_the_local_users(
    serve: StartServer, home: Path
) -> None:
    before = serve()
    assert httpx.post(f"{before.api}/reply/{PROJECT}/old-chat", json={"prompt": "Hi?"}).is_success
    before.stop()

    after = serve(env={**before.env, "CHATBOT_AUTH": "keys", "CHATBOT_API_KEY": "old-admin-key"})
    team = Team(after, create_key(after, "alice"), "", "old-admin-key")
    # The key the deployment had is the local user, who owns what was there.
    assert texts(team.history("old-admin-key", "old-chat"))[0] == "Hi?"
    assert team.get(team.alice, f"/history/{PROJECT}/old-chat").status_code == 404
    # A key made for the local user reaches it too.
    local = create_key(after, "local")
    assert texts(team.history(local, "old-chat"))[0] == "Hi?"


def test_a_change_another_sites_page_sends_with_the_cookie_is_refused(team: Team) -> None:
    with httpx.Client(base_url=team.server.api) as browser:
        assert browser.post("/session", headers=bearer(team.alice)).status_code == 204
        at = f"/create/{PROJECT}/csrf-chat"
        for site in ("cross-site", "same-site"):
            forged = browser.post(at, headers={"Sec-Fetch-Site": site})
            assert forged.status_code == 403, site
            assert forged.json()["error"]["code"] == "cross_site_request"
        assert browser.get(f"/history/{PROJECT}/csrf-chat").status_code == 404  # nothing made
        # Reads, this site's own pages, and requests that carry their key go through.
        assert browser.get(
            f"/conversations/{PROJECT}", headers={"Sec-Fetch-Site": "cross-site"}
        ).is_success
        assert browser.post(at, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        keyed = {"Sec-Fetch-Site": "cross-site", **bearer(team.alice)}
        assert browser.post(f"/create/{PROJECT}/csrf-other", headers=keyed).status_code == 200
