"""Turn leases held in this process's memory: enough when one process owns the database."""

from __future__ import annotations

from chatbot.store.base import ConversationBusy, TurnLease


class _LocalLease(TurnLease):
    __slots__ = ("_held", "_key", "_released")

    def __init__(self, held: set[tuple[str, str]], key: tuple[str, str]) -> None:
        self._held = held
        self._key = key
        self._released = False

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self._held.discard(self._key)


class LocalLeases:
    """A set of conversations with a turn in progress; acquiring a held one fails at once."""

    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()

    def acquire(self, project_id: str, app_id: str) -> TurnLease:
        key = (project_id, app_id)
        if key in self._held:
            raise ConversationBusy(f"{project_id}/{app_id}")
        self._held.add(key)
        return _LocalLease(self._held, key)

    def __len__(self) -> int:
        return len(self._held)
