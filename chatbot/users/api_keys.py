"""Per-user API keys: ``chatbot keys create|list|revoke`` writes them, servers check them.

A key is shown once, when it is made. The database keeps only its SHA-256 digest: a key
is 32 random bytes, so nobody can search for one from its digest, and a leaked database
leaks no key (no salt or slow hash is needed, unlike for a password a person chose).
Every check is one indexed read on the shared database, so a key revoked by the command
line is refused at once by every server process, not after some cache expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect, utcnow
from chatbot.database.tables import api_keys
from chatbot.domain.owners import PLAIN_USER_ID, Caller

KEY_PREFIX = "cbk_"
# "Last used" is for people deciding what to revoke: a minute's precision spares a
# write on every request.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


class InvalidUserId(ValueError):
    """A user id that cannot own keys (keys' users are plain names)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as it is stored: everything but the key."""

    id: str
    user_id: str
    admin: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    digest: str = field(repr=False)

    @property
    def caller(self) -> Caller:
        return Caller(self.user_id, admin=self.admin)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_COLUMNS = [api_keys.c[name] for name in ApiKey.__dataclass_fields__]


class ApiKeys:
    """The keys on one database."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    async def create(self, user_id: str, *, admin: bool = False) -> tuple[ApiKey, str]:
        """A new key for ``user_id``: its record and the key itself (never stored)."""
        if not PLAIN_USER_ID.fullmatch(user_id):
            raise InvalidUserId(
                f"{user_id!r} is not a user id: 1-128 of A-Z a-z 0-9 _ . @ + -, "
                "not starting with '.' or '@'"
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(secrets.token_hex(6), user_id, admin, utcnow(), None, digest(key))
        row = {name: getattr(record, name) for name in ApiKey.__dataclass_fields__}
        await self._dialect.run(lambda conn: conn.execute(api_keys.insert(), row), write=True)
        return record, key

    async def find(self, key: str) -> ApiKey | None:
        """The stored key ``key`` is (None: not, or no longer, a key); notes its use."""
        if not key.startswith(KEY_PREFIX):
            return None
        return await self._one(api_keys.c.digest == digest(key))

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id (a session names its key by id); notes its use."""
        return await self._one(api_keys.c.id == key_id)

    async def _one(self, chosen: sa.ColumnElement[bool]) -> ApiKey | None:
        query = sa.select(*_COLUMNS).where(chosen)
        now = utcnow()

        def read(conn: Connection) -> ApiKey | None:
            row = conn.execute(query).first()
            if row is None:
                return None
            found = ApiKey(*row)
            if found.last_used_at is None or now - found.last_used_at > LAST_USED_PRECISION:
                noted = api_keys.update().where(api_keys.c.id == found.id)
                conn.execute(noted.values(last_used_at=now))
            return found

        return await self._dialect.run(read, side=True)

    async def list(self) -> list[ApiKey]:
        query = sa.select(*_COLUMNS).order_by(api_keys.c.user_id, api_keys.c.created_at)
        rows = await self._dialect.run(lambda conn: conn.execute(query).all())
        return [ApiKey(*row) for row in rows]

    async def revoke(self, *, user_id: str | None = None, key_id: str | None = None) -> int:
        """Delete a user's keys, or one key by its id; answers how many were deleted."""
        k = api_keys.c
        chosen = k.user_id == user_id if user_id is not None else k.id == key_id
        deleted = api_keys.delete().where(chosen)
        return await self._dialect.run(lambda conn: conn.execute(deleted).rowcount, write=True)
