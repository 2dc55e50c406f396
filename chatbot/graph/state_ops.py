"""Cheap state updates for large histories.

``State.update`` deep-copies the current value of every key it replaces before
overwriting it (Burr's defence against in-place mutation). For ``chat_history`` that is
a deep copy of the whole conversation, twice per turn, which made a turn's cost grow with
the conversation's length. Nothing here mutates history in place (each turn builds a new
list), so the replaced values can be dropped as they are.
"""

from __future__ import annotations

from typing import Any

from burr.core import State


def replace(state: State, **values: Any) -> State:
    """``state.update(**values)`` without copying the values being replaced."""
    return State({**state.get_all(), **values}, typing_system=state.typing_system)
