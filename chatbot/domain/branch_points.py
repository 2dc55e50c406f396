"""Where a client that resends its messages parts from a stored history: the branch to make.

Clients of the AI SDK and of the OpenAI-compatible API hold the conversation themselves
and express "regenerate this reply" or "I edited that message" by sending their messages
cut at the turn they mean, with that turn's prompt last. The server answers by branching
the conversation at that turn (``chatbot.domain.branch_tree``): the prompt as stored means the
client wants another reply to it (regenerate the turn's reply), a different prompt means
an edit of it. Pure functions over stored items; the runtime runs the branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.domain.chat_items import ChatItem
from chatbot.domain.client_view import client_view


@dataclass(frozen=True, slots=True)
class BranchPoint:
    """The branch to start: at item ``index``, which the new branch diverges at."""

    index: int
    # None: regenerate the reply at ``index``; else: edit the prompt at ``index`` to this.
    prompt: str | None


def turn_starts(history: Sequence[ChatItem]) -> list[int]:
    """The index of each turn's prompt (one user item per stored turn)."""
    return [index for index, item in enumerate(history) if item["role"] == "user"]


def branch_for_turn(history: Sequence[ChatItem], start: int, prompt: str) -> BranchPoint:
    """Run ``prompt`` again in place of the turn whose prompt is item ``start``.

    The same prompt regenerates the turn's reply (its first assistant item: a reply, a
    partial one or an error); a different one edits the prompt. A turn that stored no
    reply at all (stopped before any text) has nothing to regenerate: its prompt is
    "edited" to itself, which runs it again all the same.
    """
    if history[start]["content"] == prompt:
        reply = start + 1
        if reply < len(history) and history[reply]["role"] == "assistant":
            return BranchPoint(reply, None)
    return BranchPoint(start, prompt)


def branch_for_resent(
    history: Sequence[ChatItem], earlier: Sequence[ChatItem], prompt: str
) -> BranchPoint | None:
    """Where a stateless client's ``earlier`` messages and ``prompt`` leave ``history``.

    ``earlier`` must be what the client holds of ``history`` up to a turn's prompt (its
    view: ``chatbot.domain.client_view``); then the client re-asks that turn, edited
    or not. None when ``earlier`` is no such prefix, or is all of ``history`` (then the
    client simply continues it). Failed turns are not in a client's view, so several
    turns may start right after what the client holds: a turn whose prompt is ``prompt``
    is regenerated if there is one, else the last of them is edited (the failed turns
    before it stay, as they would for a client that simply went on).
    """
    wanted = client_view(earlier)
    view = client_view(history)
    if len(view) == len(wanted) or view[: len(wanted)] != wanted:
        return None
    turns = _turns_with_view_before(history)
    candidates = [start for start, shown in turns if shown == len(wanted)]
    if not candidates:
        return None
    same_prompt = [start for start in candidates if history[start]["content"] == prompt]
    return branch_for_turn(history, (same_prompt or candidates)[-1], prompt)


def _turns_with_view_before(history: Sequence[ChatItem]) -> list[tuple[int, int]]:
    """Each turn's start, with how many messages of the client view come before it.

    The view of ``history[:start]`` is a prefix of the view of ``history`` (the view is
    built item by item and a turn's end leaves no prompt pending), so its length says it.
    """
    turns: list[tuple[int, int]] = []
    shown = 0
    answered = True  # whether the latest prompt got an assistant item (not an error)
    for index, item in enumerate(history):
        if item["role"] == "user":
            turns.append((index, shown))
            answered = False
        elif item["type"] != "error":
            shown += 1 if answered else 2  # the reply, and its prompt on its first reply
            answered = True
    return turns
