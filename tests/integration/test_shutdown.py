"""SIGTERM: stop accepting, let replies finish within the grace period, end the rest cleanly."""

from __future__ import annotations

import signal
import threading

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt


def _read_all(
    client: httpx.Client, url: str, prompt: str, into: list[Frame], started: threading.Event
):
    with client.stream("POST", url, json={"prompt": prompt}, timeout=60) as response:
        for frame in iter_frames(response):
            into.append(frame)
            if frame.type == "delta":
                started.set()


def test_sigterm_finishes_short_replies_and_ends_long_ones_with_an_error_frame(
    fake_openai: FakeOpenAI, serve: StartServer
) -> None:
    server = serve(upstream=fake_openai, CHATBOT_SHUTDOWN_GRACE_S="3")
    never = threading.Event()  # the long reply's upstream never finishes by itself
    # The short reply is held after its first token until the server has been told to
    # stop, so it is certainly still running then, whatever the machine's pace.
    short_gate = threading.Event()
    fake_openai.on_stream(
        Script(tokens=["long", " reply", " never", " ends"], gate_after=2, gate=never),
        Script(tokens=["short", " reply", " done"], gate_after=1, gate=short_gate),
    )
    client = httpx.Client()
    long_frames: list[Frame] = []
    short_frames: list[Frame] = []
    long_started, short_started = threading.Event(), threading.Event()
    readers = [
        threading.Thread(
            target=_read_all,
            args=(client, f"{server.api}/response/p/long", "long?", long_frames, long_started),
        ),
    ]
    readers[0].start()
    assert long_started.wait(20)
    readers.append(
        threading.Thread(
            target=_read_all,
            args=(client, f"{server.api}/response/p/short", "short?", short_frames, short_started),
        )
    )
    readers[1].start()
    assert short_started.wait(20)

    server.process.send_signal(signal.SIGTERM)
    # Listening stops at once: a new connection is refused while replies are still draining.
    assert fake_openai.wait_for(lambda: _refused(server.base_url), timeout=5)
    assert short_frames[-1].type == "delta"  # neither reply has ended yet
    short_gate.set()  # the short one may finish now, within the grace period

    for reader in readers:
        reader.join(30)
        assert not reader.is_alive()
    assert server.process.wait(30) is not None

    assert short_frames[-1].type == "end"
    assert short_frames[-1].value["item"]["content"] == "short reply done"
    assert long_frames[-1].type == "error"
    assert long_frames[-1].value["code"] == "server_shutting_down"
    assert "".join(f.value for f in long_frames if f.type == "delta") == "long reply"
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
    never.set()

    # After a restart, both conversations are consistent: one completed, one interrupted.
    again = serve(env=server.env)
    try:
        with httpx.Client() as fresh:
            short = fresh.get(f"{again.api}/history/p/short").json()
            long = fresh.get(f"{again.api}/history/p/long").json()
            assert short[-1] == short_frames[-1].value["item"]
            assert long == [
                {"role": "user", "content": "long?", "type": "text"},
                {"role": "assistant", "content": "long reply", "type": "text", "interrupted": True},
            ]
            fake_openai.on_stream(Script(tokens=["back"]))
            _, frames = post_prompt(fresh, again.api, "p", "long", "again?")
            assert frames[-1].type == "end"
    finally:
        again.stop()
    assert "server_shutting_down" not in again.log()


def _refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


def test_sigterm_with_nothing_in_flight_exits_promptly(serve: StartServer) -> None:
    server = serve()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(20)
    assert "Application shutdown complete" in server.log()


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_ctrl_c_also_drains(serve: StartServer, sig: int) -> None:
    server = serve()
    server.process.send_signal(sig)
    server.process.wait(20)
    assert "Application shutdown complete" in server.log()
