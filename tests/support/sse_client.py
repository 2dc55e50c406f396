"""A small SSE reader for tests: frames as dicts, each stamped with its arrival time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass
class Frame:
    type: str
    value: object
    at: float  # time.monotonic() when the frame was complete


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
            if data:
                payload = json.loads("\n".join(data))
                yield Frame(payload["type"], payload["value"], time.monotonic())


def post_prompt(
    client: httpx.Client, api: str, project: str, app: str, prompt: str
) -> tuple[httpx.Response, list[Frame]]:
    """Send a prompt to the streaming route and read every frame."""
    with client.stream(
        "POST",
        f"{api}/response/{project}/{app}",
        json={"prompt": prompt},
        timeout=60,
    ) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, list(iter_frames(response))
