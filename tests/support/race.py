"""Two prompts to one conversation at the same moment, each from its own client."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx

from tests.support.sse_client import Frame, iter_frames


@dataclass
class Attempt:
    status: int | None = None
    body: dict | None = None
    frames: list[Frame] | None = None
    client_port: int | None = None  # the local port of the connection that carried it


def race_prompts(
    targets: list[tuple[httpx.Client, str]],
    project_id: str,
    app_id: str,
    prompts: list[str],
    gate: threading.Event,
) -> list[Attempt]:
    """Send ``prompts[i]`` through ``targets[i]`` (a client and an API base) all at once.

    The upstream holds the streaming reply at ``gate``; the attempt that streams sets it
    only once every other attempt has its answer, so two attempts can only both succeed
    by running concurrently.
    """
    barrier = threading.Barrier(len(targets))
    attempts = [Attempt() for _ in targets]
    others_done = threading.Semaphore(0)

    def send(index: int) -> None:
        attempt = attempts[index]
        client, api = targets[index]
        try:
            barrier.wait(10)
            with client.stream(
                "POST", f"{api}/response/{project_id}/{app_id}", json={"prompt": prompts[index]}
            ) as response:
                attempt.status = response.status_code
                stream = response.extensions["network_stream"]
                attempt.client_port = stream.get_extra_info("client_addr")[1]
                if response.status_code != 200:
                    response.read()
                    attempt.body = response.json()
                    return
                frames = iter_frames(response)
                attempt.frames = [next(frames), next(frames)]  # history, first delta
                # Hold the reply open until every other attempt has finished.
                for _ in range(len(targets) - 1):
                    others_done.acquire(timeout=20)
                gate.set()
                attempt.frames += list(frames)
        finally:
            if attempt.status != 200:
                others_done.release()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    gate.set()
    return attempts
