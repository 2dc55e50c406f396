"""Who is asking, and the storage names that keep one user's conversations from another's.

A conversation id is its user's own: two users may both call one ``first-chat``. Rather
than add an owner to every key of every table (and trust every query to filter on it),
the owner goes into the project the conversation is stored under: the project a user
names, ``demo``, is stored as ``demo:<owner>``. A query can then only ever reach the
caller's own rows, whatever it forgets. Project ids never contain ``:``
(``[A-Za-z0-9_-]``), so no user's projects can be mistaken for another's, and the
``local`` user (the only one without sign-in, and the owner of everything stored before
users existed) keeps the bare project id: old data needs no rewrite.

A storage project also names Burr's tracking project (a directory), which allows only
``[A-Za-z0-9_:-]``: ``<owner>`` spells the user id with every other character (``_``
too) as ``_`` and its hex, so ``alice@example.com`` is ``alice_40example_2ecom`` and no two
ids meet; an id too long for that is ``:`` and its digest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

LOCAL_USER = "local"
OWNER_SEPARATOR = ":"
# The user ids an admin gives keys to (any other source's ids may be anything).
PLAIN_USER_ID = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.@+-]{0,127}")
_KEPT = re.compile(r"[A-Za-z0-9-]")
_LONGEST_SPELLED = 120


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts for; ``admin`` may see every user's runs in Burr's UI."""

    user_id: str
    admin: bool = False

    def project(self, project_id: str) -> str:
        """The storage project of ``project_id`` as this user names it."""
        return owned_project(self.user_id, project_id)

    @property
    def owner(self) -> str:
        """The owner token of this user's storage projects (what ``owner_of`` answers)."""
        return LOCAL_USER if self.user_id == LOCAL_USER else owner_token(self.user_id)


LOCAL = Caller(LOCAL_USER, admin=True)


class ReservedUserId(ValueError):
    """An identity source named ``local``: that id is the server's own user's."""


def external_caller(user_id: str, *, admin: bool) -> Caller:
    """A user an outside source names (an auth proxy, an OpenID provider), never the
    ``local`` user, whose projects hold what was stored before users existed."""
    if user_id == LOCAL_USER:
        raise ReservedUserId(f"the reserved user id {LOCAL_USER!r}")
    return Caller(user_id, admin=admin)


def owner_token(user_id: str) -> str:
    """The user as storage names spell them (see above): one token per user id."""
    spelled = "".join(
        c if _KEPT.fullmatch(c) else "".join(f"_{b:02x}" for b in c.encode()) for c in user_id
    )
    if len(spelled) <= _LONGEST_SPELLED:
        return spelled
    return OWNER_SEPARATOR + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def owned_project(user_id: str, project_id: str) -> str:
    if user_id == LOCAL_USER:
        return project_id
    return f"{project_id}{OWNER_SEPARATOR}{owner_token(user_id)}"


def project_name(stored: str) -> str:
    """A storage project as its owner names it (``owned_project`` undone)."""
    return stored.partition(OWNER_SEPARATOR)[0]


def owner_of(stored: str) -> str:
    """The owner token of a storage project (``local`` for a bare project)."""
    project, separator, owner = stored.partition(OWNER_SEPARATOR)
    return owner if separator else LOCAL_USER


def public_project(stored: str) -> str:
    """The project as its user names it (what messages and responses show)."""
    return stored.partition(OWNER_SEPARATOR)[0]
