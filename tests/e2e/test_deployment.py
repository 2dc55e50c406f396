"""A real deployment, reached only through the nginx config the repository ships.

One PostgreSQL, three ``chatbot serve`` replicas (a HOME each, as on three machines; the
offline model at a pace slow enough to act mid-reply; Burr's UI on; tracking in the
database) and Debian's nginx rendered from deploy/nginx.conf in front, round robin. Every
request of these tests goes to nginx's port. Which replica did what is read from what the
replicas leave behind (their access logs, the lease and relay rows in the database:
tests/support/replicas.py), never by asking a replica directly.

The tests share the deployment and run in order: the last one kills a replica.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.e2e.chat_page import ChatPage
from tests.integration.test_ai_sdk import run_client
from tests.support.nginx import Nginx, check_installed, running_nginx
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401 (fixture)
from tests.support.replicas import (
    Replica,
    lease_holder_pid,
    marks,
    mirrored,
    served,
    wait_until,
)
from tests.support.server_process import Servers
from tests.support.sse_client import Frame, iter_frames

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PROJECT = "demo_streaming_chatbot"  # the chat UI's project, where /v1 and /api/chat live
MODEL = "burr-chatbot"
# Slow enough that a poem (about 75 tokens) streams for several seconds: a reload, a stop
# or a kill lands mid-reply. Haiku prompts (about 25 tokens) keep the other turns short.
PACE_MS = "120"
# Short, so that a killed replica's conversation is free again soon (renewed every third).
LEASE_TTL_S = "5"
REPLICA_NAMES = ("a", "b", "c")
RESPONDERS = {
    "answer_question",
    "generate_code",
    "generate_poem",
    "prompt_for_more",
    "unsafe_response",
}
# Waits bound a hang; none of them is what a test checks.
LONG_WAIT_S = 90.0


@dataclass
class Deployment:
    nginx: Nginx
    replicas: list[Replica]
    database_url: str
    # Every conversation the module's tests made, for the Burr tests to look for.
    conversations: set[str] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return self.nginx.base_url

    @property
    def api(self) -> str:
        return self.nginx.api

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, trust_env=False)

    def history(self, app_id: str) -> list[dict]:
        with self.client() as client:
            response = client.get(f"{self.api}/history/{PROJECT}/{app_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def holder(self, app_id: str) -> Replica:
        """The replica whose live lease holds the conversation's running turn."""
        found: list[Replica] = []

        def held() -> bool:
            pid = lease_holder_pid(self.database_url, PROJECT, app_id)
            found[:] = [r for r in self.replicas if r.pid == pid]
            return bool(found)

        assert wait_until(held, LONG_WAIT_S), f"no replica holds a turn of {app_id}"
        return found[0]

    def nudge(self, requests: int) -> None:
        """Move nginx's rotation on by ``requests`` requests (cheap ones)."""
        with self.client() as client:
            for _ in range(requests):
                assert client.get("/healthz").status_code == 200

    def logs(self) -> str:
        parts = [f"--- replica {r.name} (pid {r.pid})\n{r.server.log()}" for r in self.replicas]
        parts.append(f"--- nginx access log\n{self.nginx.access_log()}")
        parts.append(f"--- nginx error log\n{self.nginx.error_log()}")
        return "\n".join(parts)


@pytest.fixture(scope="module")
def deployment(
    postgres_server: PostgresServer,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
    built_ui: Path,
) -> Iterator[Deployment]:
    check_installed()  # before anything starts: a missing nginx fails, never skips
    database_url = postgres_server.create_database()
    homes = [tmp_path_factory.mktemp(f"replica-{name}") for name in REPLICA_NAMES]
    servers = Servers(homes[0])
    env = {
        "CHATBOT_DATABASE_URL": database_url,
        "CHATBOT_BURR_UI_ENABLED": "true",
        "CHATBOT_TRACKING": "database",
        "CHATBOT_OFFLINE_PACE_MS": PACE_MS,
        "CHATBOT_CANNED_PACE_MS": PACE_MS,
        "CHATBOT_TURN_LEASE_TTL_S": LEASE_TTL_S,
        # uvicorn's X-Forwarded-For handling trusts these peers: nginx, on loopback.
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    try:
        # The first start creates the schema; the others then start together.
        first = servers.start(home=homes[0], **env)
        with ThreadPoolExecutor(len(homes) - 1) as pool:
            rest = list(pool.map(lambda home: servers.start(home=home, **env), homes[1:]))
        replicas = [
            Replica(name, server)
            for name, server in zip(REPLICA_NAMES, [first, *rest], strict=True)
        ]
        with running_nginx([replica.address for replica in replicas]) as nginx:
            yield Deployment(nginx, replicas, database_url)
    finally:
        servers.stop_all()


def _squeezed(text: str) -> str:
    """A reply's words without whitespace or emphasis marks: how the page and the stored
    Markdown of a poem compare (line breaks render as <br>, ``*...*`` as <em>)."""
    return re.sub(r"[\s*]", "", text)


def _reply_text(chat: ChatPage, index: int) -> str:
    return chat.replies.nth(index).get_by_test_id("assistant-text").evaluate("e => e.textContent")


def _ended_items(event_stream: str) -> list[dict]:
    """The items of the ``end`` frames in a ``text/event-stream`` body."""
    frames = [
        json.loads(line.removeprefix("data:"))
        for line in event_stream.splitlines()
        if line.startswith("data:")
    ]
    return [frame["value"]["item"] for frame in frames if frame["type"] == "end"]


def _read_reply(deployment: Deployment, app_id: str, opened: threading.Event) -> list[Frame]:
    """Every frame a reader of the conversation's reply gets through nginx until its
    stream ends or is cut; ``opened`` is set once the reply is being read."""
    frames: list[Frame] = []
    with deployment.client() as client:
        try:
            url = f"{deployment.api}/stream/{PROJECT}/{app_id}"
            with client.stream("GET", url, timeout=LONG_WAIT_S) as response:
                assert response.status_code == 200, response.read()
                opened.set()
                frames.extend(iter_frames(response))
        except httpx.HTTPError:
            pass  # cut where the replica it read from died
    return frames


def _ask_haiku(deployment: Deployment, app_id: str, topic: str) -> dict:
    """One whole turn through nginx's non-streaming route; answers its ``end`` value."""
    with deployment.client() as client:
        response = client.post(
            f"{deployment.api}/reply/{PROJECT}/{app_id}",
            json={"prompt": f"Write a haiku about {topic}"},
        )
    assert response.status_code == 200, response.text
    deployment.conversations.add(app_id)
    return response.json()


# --- nginx in front ----------------------------------------------------------------------
def test_round_robin_reaches_every_replica_with_the_clients_address(
    deployment: Deployment,
) -> None:
    before = marks(deployment.replicas)
    with deployment.client() as client:
        for _ in range(2 * len(deployment.replicas)):
            response = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
            assert response.status_code == 200
    # Each replica answered some, and took the client's address from nginx's
    # X-Forwarded-For (it trusts nginx's loopback address; nginx appended its peer).
    counts = {r.name: 0 for r in deployment.replicas}
    for replica in deployment.replicas:
        for access in replica.accesses(before[replica.name]):
            if access.path == "/healthz":
                assert access.client == "203.0.113.7", access
                counts[replica.name] += 1
    assert all(counts.values()), counts
    assert sum(counts.values()) == 2 * len(deployment.replicas)


# --- the chat UI in Chromium ---------------------------------------------------------------
def test_a_reply_streams_and_a_reload_mid_reply_resumes_it_on_another_replica(
    deployment: Deployment, page: Page
) -> None:
    chat = ChatPage(page, deployment.base_url).open()
    chat.record_streaming()
    chat.ask("Write a haiku about lanterns")
    assert len(chat.streamed_texts()) >= 3, "the first reply did not stream"
    app_id = chat.app_id
    deployment.conversations.add(app_id)
    first_text = _reply_text(chat, 0)

    reply = chat.send("Write a poem about the harbour at dusk")
    expect(reply.get_by_test_id("assistant-text")).not_to_be_empty()
    holder = deployment.holder(app_id)
    # Nobody but the holder has read the reply yet: the page that sent it reads it there.
    assert not mirrored(deployment.database_url, PROJECT, app_id), "read elsewhere already"

    # Reload until the page's resume reaches a replica other than the holder: that one
    # has the reply only through the database, and the holder mirrors it out only then.
    # Each round moves the rotation on by a different number of requests, so the reloads
    # do not all land where the first did.
    landed = False
    for attempt in range(8):
        deployment.nudge(attempt % len(deployment.replicas))
        page.reload()
        chat.record_streaming()
        reply = chat.replies.nth(1)
        expect(reply).to_have_attribute("data-status", "streaming")
        expect(reply.get_by_test_id("assistant-text")).not_to_be_empty()
        if mirrored(deployment.database_url, PROJECT, app_id):
            landed = True
            break
    assert landed, "no reload reached another replica before the reply ended"

    chat.wait_done(reply)
    stored = deployment.history(app_id)
    assert [item["role"] for item in stored] == ["user", "assistant"] * 2
    whole = _squeezed(stored[3]["content"])
    shown = _reply_text(chat, 1)
    # The page that resumed elsewhere shows the whole reply as stored: nothing missing,
    # nothing twice; and every text it showed on the way was a beginning of it.
    assert _squeezed(shown) == whole
    seen = chat.streamed_texts()
    assert seen and all(whole.startswith(_squeezed(text)) for text in seen), seen
    assert len(seen) >= 2, "the reply did not grow after the reload"
    expect(chat.replies).to_have_count(2)
    expect(chat.user_messages).to_have_count(2)
    assert _squeezed(_reply_text(chat, 0)) == _squeezed(first_text)
    expect(chat.input).to_be_enabled()

    # The replicas' logs agree: the holder ran the turn, another one served a resume.
    assert served([holder], "POST", "/api/chat", {})[holder.name] >= 1
    resumes = served(deployment.replicas, "GET", f"/api/chat/{app_id}/stream", {})
    others = {r.name for r in deployment.replicas} - {holder.name}
    assert any(resumes[name] for name in others), (holder.name, resumes)


def test_stop_mid_reply_keeps_the_partial_reply(deployment: Deployment, page: Page) -> None:
    chat = ChatPage(page, deployment.base_url).open()
    reply = chat.send("Write a poem about the lighthouse keeper")
    text = reply.get_by_test_id("assistant-text")
    expect(text).to_have_text(re.compile(r"\w+ \w+ \w+"))
    app_id = chat.app_id
    deployment.conversations.add(app_id)

    chat.stop_button.click()
    chat.wait_done(reply, "stopped")
    expect(reply.get_by_test_id("interrupted")).to_be_visible()
    stored = deployment.history(app_id)[-1]
    assert stored["role"] == "assistant" and stored["interrupted"] is True
    assert _squeezed(text.evaluate("e => e.textContent")) == _squeezed(stored["content"])
    assert stored["content"].strip()
    # The stop ended the reply before its end: the whole poem is longer.
    assert "connect a real model" not in stored["content"]
    expect(chat.input).to_be_enabled()


def test_editing_a_prompt_makes_a_new_branch(deployment: Deployment, page: Page) -> None:
    chat = ChatPage(page, deployment.base_url).open()
    chat.ask("Write a haiku about the sea")
    app_id = chat.app_id
    deployment.conversations.add(app_id)
    old_reply = _reply_text(chat, 0)
    prompt = chat.items.nth(0)

    chat.record_streaming()
    reply = chat.edit(prompt, "Write a haiku about the moon")
    chat.wait_done(reply)
    assert len(chat.streamed_texts()) >= 2, "the edited turn's reply did not stream"
    expect(chat.prompts).to_have_text(["Write a haiku about the moon"])
    expect(chat.replies).to_have_count(1)
    expect(chat.version(prompt)).to_have_text("2 / 2")
    new_reply = _reply_text(chat, 0)
    assert new_reply != old_reply

    stored = deployment.history(app_id)
    assert stored[0]["content"] == "Write a haiku about the moon"
    assert _squeezed(stored[1]["content"]) == _squeezed(new_reply)
    assert (stored[0]["branch"]["version"], stored[0]["branch"]["versions"]) == (1, 2)

    chat.previous_version(prompt).click()
    expect(chat.version(prompt)).to_have_text("1 / 2")
    expect(chat.prompts).to_have_text(["Write a haiku about the sea"])
    assert _reply_text(chat, 0) == old_reply


# --- API clients -------------------------------------------------------------------------
def test_a_websocket_turn_goes_through_nginx(deployment: Deployment) -> None:
    url = f"{deployment.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/deploy-socket"
    deployment.conversations.add("deploy-socket")
    texts = []
    with connect(url, proxy=None) as ws:
        for topic in ("owls", "larks"):
            ws.send(json.dumps({"type": "prompt", "prompt": f"Write a haiku about {topic}"}))
            frames = []
            while not frames or frames[-1]["type"] not in ("end", "error"):
                frames.append(json.loads(ws.recv(timeout=LONG_WAIT_S)))
            assert frames[-1]["type"] == "end", frames[-1]
            texts.append("".join(f["value"] for f in frames if f["type"] == "delta"))
    stored = deployment.history("deploy-socket")
    assert [item["content"] for item in stored if item["role"] == "assistant"] == texts


def _resent_turns(client: openai.OpenAI, topics: tuple[str, ...]) -> tuple[str, list[dict]]:
    """Non-streaming turns of one conversation, found again from the messages resent;
    answers its id and the messages."""
    messages: list[dict] = []
    ids = set()
    for topic in topics:
        messages.append({"role": "user", "content": f"Write a haiku about {topic}"})
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
        ids.add(raw.headers["X-Conversation-Id"])
        completion = raw.parse()
        assert completion.choices[0].finish_reason == "stop"
        messages.append({"role": "assistant", "content": completion.choices[0].message.content})
    assert len(ids) == 1, ids
    return ids.pop(), messages


def _streamed_turns(client: openai.OpenAI, topics: tuple[str, ...]) -> tuple[str, list[str]]:
    """Streaming turns of one conversation named by its header; answers its id and the
    replies as the chunks carried them."""
    named = "deploy-v1-streamed"
    replies = []
    for topic in topics:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"Write a haiku about {topic}"}],
            stream=True,
            extra_headers={"X-Conversation-Id": named},
        )
        chunks = list(stream)
        assert chunks[-1].choices[0].finish_reason == "stop"
        texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta]
        assert sum(1 for t in texts if t) > 3, "the reply came in one piece, not streamed"
        replies.append("".join(t for t in texts if t))
    return named, replies


def test_openai_sdk_turns_are_spread_over_the_replicas(deployment: Deployment) -> None:
    before = marks(deployment.replicas)
    with openai.OpenAI(
        base_url=f"{deployment.base_url}/v1",
        api_key="unused",
        max_retries=0,
        http_client=httpx.Client(trust_env=False, timeout=60),
    ) as client:
        resent, messages = _resent_turns(client, ("rivers", "deltas", "estuaries"))
        named, replies = _streamed_turns(client, ("frost", "thaw", "spring"))
    deployment.conversations.update({resent, named})
    assert [(i["role"], i["content"]) for i in deployment.history(resent)] == [
        (m["role"], m["content"]) for m in messages
    ]
    stored = deployment.history(named)
    assert [i["content"] for i in stored if i["role"] == "assistant"] == replies

    counts = served(deployment.replicas, "POST", "/v1/chat/completions", before)
    assert sum(counts.values()) == 6
    assert len(counts) == len(deployment.replicas), counts


def test_ai_sdk_client_turns_are_spread_over_the_replicas(deployment: Deployment) -> None:
    # The offline model's haiku depends on its prompt only: what each prompt gets is asked
    # first through nginx's plain route, in a conversation of its own.
    def expected(topic: str) -> dict:
        end = _ask_haiku(deployment, f"deploy-sdk-expected-{topic}", topic)
        return {"mode": end["mode"], "text": end["item"]["content"]}

    topics = ("meadows", "orchards", "hedgerows")
    replies = {topic: expected(topic) for topic in topics}
    prompts = [f"Write a haiku about {topic}" for topic in topics]
    before = marks(deployment.replicas)

    # Two turns, then the AI SDK's regenerate of the last reply.
    deployment.conversations.add("deploy-sdk-chat")
    result = run_client(
        "conversation",
        {
            "api": f"{deployment.base_url}/api/chat",
            "chatId": "deploy-sdk-chat",
            "prompts": prompts[:2],
            "replies": [replies["meadows"], replies["orchards"], replies["orchards"]],
        },
    )
    first, second = replies["meadows"]["text"], replies["orchards"]["text"]
    assert result["messages"] == [prompts[0], first, prompts[1], second]
    shown = deployment.history("deploy-sdk-chat")
    assert [i["content"] for i in shown] == result["messages"]
    assert (shown[3]["branch"]["version"], shown[3]["branch"]["versions"]) == (1, 2)

    # Two turns, a regenerate of the first reply and an edit of the first prompt.
    deployment.conversations.add("deploy-sdk-branches")
    result = run_client(
        "branches",
        {
            "api": f"{deployment.base_url}/api/chat",
            "chatId": "deploy-sdk-branches",
            "prompts": prompts[:2],
            "editedPrompt": prompts[2],
            "replies": [
                replies["meadows"],
                replies["orchards"],
                replies["meadows"],
                replies["hedgerows"],
            ],
        },
        lambda step: None,
    )
    assert result["messages"] == [prompts[2], replies["hedgerows"]["text"]]
    shown = deployment.history("deploy-sdk-branches")
    assert [i["content"] for i in shown] == result["messages"]

    counts = served(deployment.replicas, "POST", "/api/chat", before)
    assert sum(counts.values()) == 3 + 4
    assert len(counts) == len(deployment.replicas), counts


# --- Burr's tracking, whichever replica answers ----------------------------------------------
def _burr_apps(client: httpx.Client) -> dict[str, dict]:
    response = client.get(f"/burr/api/v0/{PROJECT}/__none__/apps", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {app["app_id"]: app for app in response.json()["applications"]}


def test_burr_api_shows_every_conversation_and_its_steps_on_every_replica(
    deployment: Deployment,
) -> None:
    _ask_haiku(deployment, "deploy-burr-one", "ledgers")
    _ask_haiku(deployment, "deploy-burr-two", "lanterns")
    wanted = set(deployment.conversations)
    before = marks(deployment.replicas)
    with deployment.client() as client:
        # Asked in turn: nginx sends the requests to each replica in rotation.
        listings = [_burr_apps(client) for _ in range(2 * len(deployment.replicas))]
        for listing in listings:
            missing = wanted - set(listing)
            assert not missing, f"Burr's API did not list {sorted(missing)}"
        apps = listings[-1]
        for app_id in sorted(wanted):
            partition = apps[app_id]["partition_key"] or "__none__"
            for _ in range(len(deployment.replicas)):
                response = client.get(f"/burr/api/v0/{PROJECT}/{app_id}/{partition}/apps")
                assert response.status_code == 200, (app_id, response.text)
                actions = [s["step_start_log"]["action"] for s in response.json()["steps"]]
                assert actions[:3] == ["prompt", "check_safety", "decide_mode"], (app_id, actions)
                assert actions[3] in RESPONDERS, (app_id, actions)
    listed = served(deployment.replicas, "GET", f"/burr/api/v0/{PROJECT}/__none__/apps", before)
    assert len(listed) == len(deployment.replicas), listed
    steps = served(
        deployment.replicas, "GET", re.compile(rf"/burr/api/v0/{PROJECT}/[^/]+/[^/]+/apps"), before
    )
    assert len(steps) == len(deployment.replicas), steps


def test_burr_ui_in_chromium_lists_the_conversations(deployment: Deployment, page: Page) -> None:
    _ask_haiku(deployment, "deploy-burr-page", "ink")
    page.set_viewport_size({"width": 1400, "height": 900})
    # Loaded once per replica: the page's requests go wherever the rotation has got to.
    for _ in range(len(deployment.replicas)):
        page.goto(f"{deployment.base_url}/burr/project/{PROJECT}")
        for app_id in sorted(deployment.conversations):
            expect(page.get_by_text(app_id, exact=True).first).to_be_visible(timeout=60_000)


# --- a replica dies mid-reply (last: it leaves two replicas) -----------------------------------
def test_a_replica_killed_mid_reply_ends_as_lost_and_loses_nothing_stored(
    deployment: Deployment,
) -> None:
    app_id = "deploy-crash"
    _ask_haiku(deployment, app_id, "glass")
    before = deployment.history(app_id)
    assert [i["role"] for i in before] == ["user", "assistant"]

    received = []
    with deployment.client() as client:
        with client.stream(
            "POST",
            f"{deployment.api}/response/{PROJECT}/{app_id}",
            json={"prompt": "Write a poem about the night ferry"},
        ) as response:
            assert response.status_code == 200
            frames = iter_frames(response)
            for frame in frames:  # a few words into the poem
                received.append(frame)
                if sum(f.type == "delta" for f in received) == 3:
                    break
            victim = deployment.holder(app_id)
            # Readers of the reply through nginx, opened until one reads it on a replica
            # that only follows it (the holder mirrors it out only then).
            pool = ThreadPoolExecutor(len(deployment.replicas))
            readers = []
            for _ in deployment.replicas:
                opened = threading.Event()
                readers.append(pool.submit(_read_reply, deployment, app_id, opened))
                assert opened.wait(LONG_WAIT_S), "a reader got no answer"
                if wait_until(lambda: mirrored(deployment.database_url, PROJECT, app_id), 3.0):
                    break
            assert mirrored(deployment.database_url, PROJECT, app_id), "no reader elsewhere"
            victim.server.kill()
            assert not victim.alive
            # The stream through nginx is cut where the replica died: it never ends.
            try:
                received += list(frames)
            except httpx.HTTPError:
                pass
    assert all(f.type != "end" for f in received), received[-1]
    assert any(f.type == "delta" for f in received)
    # The readers on the other replicas are told the reply ended, as interrupted: its
    # writer is gone (once its lease lapses), and they keep what they were shown.
    read = [reader.result(timeout=LONG_WAIT_S) for reader in readers]
    pool.shutdown()
    lost = [frames for frames in read if frames and frames[-1].type == "error"]
    assert lost, [frames[-1:] for frames in read]
    for frames in lost:
        assert frames[-1].value["code"] == "reply_lost", frames[-1]
        assert any(f.type == "delta" for f in frames)
    for frames in read:  # a reader on the dead replica is cut: told nothing
        assert all(f.type not in ("end", "error") for f in frames[:-1]), frames
    survivors = [r for r in deployment.replicas if r is not victim]
    after_kill = marks(deployment.replicas)

    # nginx routes around the dead replica: every request of a full rotation is answered.
    with deployment.client() as client:
        for _ in range(2 * len(deployment.replicas)):
            assert client.get("/healthz").status_code == 200
    assert "Connection refused" in deployment.nginx.error_log()
    assert victim.address in deployment.nginx.error_log()

    # A reader is never told that the cut reply ended: it gets nothing (204), or the
    # reply of the turn before, which the replica that wrote it still keeps for a replay.
    with deployment.client() as client:
        for _ in range(len(survivors)):
            response = client.get(f"{deployment.api}/stream/{PROJECT}/{app_id}")
            assert response.status_code in (200, 204), response.text
            assert all(end == before[1] for end in _ended_items(response.text)), response.text

    # Once the dead replica's lease lapses nobody is writing the reply: a stop finds
    # nothing to stop (until then the conversation is busy, and nothing answers the stop).
    def nothing_to_stop() -> bool:
        with deployment.client() as client:
            stop = client.post(f"{deployment.api}/stop/{PROJECT}/{app_id}")
        assert stop.status_code == 409, stop.text
        return stop.json()["error"]["code"] == "nothing_to_stop"

    assert wait_until(nothing_to_stop, LONG_WAIT_S, interval=0.5), deployment.logs()

    # The conversation's next prompt works, on a replica still alive; until the lease
    # lapses the conversation is only ever busy, never an error.
    answers: list[httpx.Response] = []

    def next_turn() -> bool:
        with deployment.client() as client:
            answers.append(
                client.post(
                    f"{deployment.api}/reply/{PROJECT}/{app_id}",
                    json={"prompt": "Write a haiku about the morning after"},
                )
            )
        return answers[-1].status_code != 409

    assert wait_until(next_turn, LONG_WAIT_S, interval=0.5)
    assert answers[-1].status_code == 200, answers[-1].text
    assert all(a.json()["error"]["code"] == "conversation_busy" for a in answers[:-1])
    turn = served(
        survivors, "POST", f"/api/v0/streaming_chatbot/reply/{PROJECT}/{app_id}", after_kill
    )
    assert sum(turn.values()) == len(answers)

    # What was stored before the kill is all there. The cut turn was stored by a survivor
    # once the lease lapsed (before the next prompt, or by it): its prompt, and an error
    # item saying the reply was lost with its replica. Then the next turn.
    after = deployment.history(app_id)
    assert after[:2] == before
    assert after[2:] == [
        {"role": "user", "content": "Write a poem about the night ferry", "type": "text"},
        {
            "role": "assistant",
            "content": "The server writing this reply stopped before it ended; "
            "send your message again.",
            "type": "error",
        },
        {"role": "user", "content": "Write a haiku about the morning after", "type": "text"},
        answers[-1].json()["item"],
    ]
    for _ in range(len(survivors)):  # every replica still alive reads the same
        assert deployment.history(app_id) == after
