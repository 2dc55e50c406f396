"""Burr tracking bytes per turn do not grow with the conversation.

Burr logs a state at the end of every step; with the whole chat history in it, each turn
wrote more than the one before (a 200-turn conversation left 76 MB). The same prompt,
turn after turn, gets the same reply from the offline model, so every turn's log lines
should weigh about the same however long the conversation is.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.server_process import StartServer
from tests.support.sse_client import post_prompt

PROJECT = "growth"
TURNS = 30
PROMPT = "What is a lighthouse?"


def bytes_per_turn(log: Path) -> list[int]:
    """Bytes of the log written by each turn, in order: a turn's lines start at the begin
    entry of its ``prompt`` step and run to the next one."""
    turns: list[int] = []
    for line in log.read_bytes().splitlines(keepends=True):
        entry = json.loads(line)
        if entry["type"] == "begin_entry" and entry["action"] == "prompt":
            turns.append(0)
        assert turns, f"the log does not start with a turn: {line[:200]!r}"
        turns[-1] += len(line)
    return turns


def test_tracking_bytes_per_turn_do_not_grow_with_the_conversation(
    home: Path, serve: StartServer, client: httpx.Client
) -> None:
    tracking = home / "tracking"
    server = serve(
        CHATBOT_TRACKING_DIR=str(tracking),
        CHATBOT_OFFLINE_PACE_MS="0",
        CHATBOT_CANNED_PACE_MS="0",
    )
    try:
        for _ in range(TURNS):
            _, frames = post_prompt(client, server.api, PROJECT, "long", PROMPT)
            assert frames[-1].type == "end"
        history = client.get(f"{server.api}/history/{PROJECT}/long").json()
    finally:
        server.stop()  # stopping flushes the tracking writer
    assert len(history) == 2 * TURNS

    sizes = bytes_per_turn(tracking / PROJECT / "long" / "log.jsonl")
    assert len(sizes) == TURNS
    first, last = sum(sizes[:5]) / 5, sum(sizes[-5:]) / 5
    # Logging the whole history, turn 30 alone would carry 4 copies of 58 messages.
    assert last <= 1.5 * first, f"turns 1-5: {first:.0f} B, turns {TURNS - 4}-{TURNS}: {last:.0f} B"
