"""What a step's logged state holds: the messages it added, not the whole conversation.

Burr logs the whole state at the end of every step, chat history included: four copies of
the conversation per turn, so a 200-turn conversation left 76 MB of log. Here a step's
logged state carries, in place of ``chat_history``, the messages that step added
(``chat_history_added``) and the history's length after it (``chat_history_length``);
a field holding an earlier message (``response``, until the next reply) points to it.
Burr's UI still shows every step, its state, the messages it added and the stream
timings; the full conversation is in the conversation store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from burr.core import State
from burr.core.application import SEQUENCE_ID

from chatbot.domain.chat_items import ChatHistory

_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_plain_json(value: Any) -> bool:
    if isinstance(value, (*_JSON_SCALARS, ChatHistory)):  # histories hold only our items
        return True
    if isinstance(value, list):
        # Chat items are flat dicts of strings: checking their values is enough.
        return all(
            isinstance(item, dict) and all(isinstance(v, _JSON_SCALARS) for v in item.values())
            if not isinstance(item, _JSON_SCALARS)
            else True
            for item in value
        )
    if isinstance(value, dict):
        return all(isinstance(v, _JSON_SCALARS) for v in value.values())
    return False


HISTORY = "chat_history"
HISTORY_ADDED = "chat_history_added"
HISTORY_LENGTH = "chat_history_length"


class HistoryMark:
    """Where a step's history started: its length and its last item (kept by reference)."""

    __slots__ = ("length", "last")

    def __init__(self, history: Sequence[Any]) -> None:
        self.length = len(history)
        self.last = history[-1] if history else None

    def added_in(self, history: Sequence[Any]) -> list[Any] | None:
        """The items appended since the mark, or None when ``history`` does not extend it."""
        if len(history) < self.length:
            return None
        if self.length:
            last = history[self.length - 1]
            if last is not self.last and last != self.last:
                return None
        return list(history[self.length :])


def _history_for_log(values: dict[str, Any], before: HistoryMark | None) -> None:
    """Replace the history in ``values`` by what the step added and its length.

    Earlier messages are logged once, by the step that added them: another field holding
    one of them (``response`` keeps the last reply until the next turn's) is logged as a
    pointer, ``{"chat_history_item": index}``. A step that rewrote the history instead
    of extending it (none of ours does) keeps it whole, so the log never misstates a
    conversation."""
    history = values.get(HISTORY)
    if not isinstance(history, list) or before is None:
        return
    added = before.added_in(history)
    if added is None:
        return
    del values[HISTORY]
    _point_to_earlier_messages(values, history, before.length)
    values[HISTORY_ADDED] = added
    values[HISTORY_LENGTH] = len(history)


# How many of the latest earlier messages a field is compared with: a reply stays in the
# state for the next turn, a few messages back at most, and the check stays O(1).
_POINTER_REACH = 4


def _point_to_earlier_messages(values: dict[str, Any], history: list[Any], start: int) -> None:
    recent = range(start - 1, max(start - _POINTER_REACH, 0) - 1, -1)
    for key, value in list(values.items()):
        if isinstance(value, dict):
            for index in recent:
                if history[index] is value or history[index] == value:
                    values[key] = {"chat_history_item": index}
                    break


def state_for_log(
    state: State, before: HistoryMark | None, sequence_id: int, serde_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The state as this client logs it at the end of step ``sequence_id``. Plain JSON
    values (all of ours) are handed to pydantic as they are, skipping Burr's recursive
    ``serde`` walk."""
    values = state.get_all()
    if SEQUENCE_ID in values:  # a state taken from the next step's start is one ahead
        values[SEQUENCE_ID] = sequence_id
    _history_for_log(values, before)
    if all(_is_plain_json(value) for value in values.values()):
        return values
    return State(values).serialize(**serde_kwargs)  # Burr's field and type serde
