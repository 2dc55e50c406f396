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
    id: str | None = None  # the SSE `id:` line, on routes that send one


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            lines = block.split("\n")
            data = [line[5:].lstrip() for line in lines if line.startswith("data:")]
            ids = [line[3:].lstrip() for line in lines if line.startswith("id:")]
            if data:
                payload = json.loads("\n".join(data))
                frame_id = ids[-1] if ids else None
                yield Frame(payload["type"], payload["value"], time.monotonic(), frame_id)


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


def read_text(frames: Iterator[Frame], text: str) -> list[Frame]:
    """Frames up to the one whose delta completes ``text``, the reply's beginning.

    Count text, never delta frames: the server joins the tokens that arrive from the
    upstream in one network read into one delta (a reader that fell behind catches up
    in fewer frames), so ``n`` tokens may come in fewer than ``n`` frames, and waiting
    for the ``n``-th frame of a stream held after ``n`` tokens would wait for the hold.
    """
    assert text, "the text to read up to"
    got: list[Frame] = []
    written = ""
    for frame in frames:
        got.append(frame)
        if frame.type == "delta":
            written += str(frame.value)
            if len(written) >= len(text):
                break
    assert written.startswith(text), (written, text)
    return got
