"""The storage names that keep users apart: one per (user, project), and Burr-valid."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from chatbot.domain.owners import LOCAL, Caller, owned_project, owner_token, public_project

PROJECT_ID = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
USER_ID = st.text(min_size=1, max_size=300)
# What Burr's local tracker accepts as a project name (it is a directory).
BURR_PROJECT = re.compile(r"[A-Za-z0-9_:-]+")


def test_the_local_user_keeps_the_bare_project() -> None:
    assert LOCAL.project("demo") == "demo"
    assert Caller("alice").project("demo") == "demo:alice"
    assert owned_project("alice@example.com", "demo") == "demo:alice_40example_2ecom"


@given(PROJECT_ID, USER_ID)
def test_every_storage_name_is_a_burr_project_and_names_its_project(
    project: str, user: str
) -> None:
    stored = owned_project(user, project)
    assert BURR_PROJECT.fullmatch(stored)
    assert public_project(stored) == project
    assert len(stored) <= 64 + 1 + 120


@given(USER_ID, USER_ID)
def test_two_users_never_share_a_storage_name(first: str, second: str) -> None:
    if first != second:
        assert owner_token(first) != owner_token(second)
        assert owned_project(first, "p") != owned_project(second, "p")


def test_an_id_spelled_like_another_ids_escape_is_not_that_id() -> None:
    # "_" is escaped itself, so "a_40b" (typed) and "a@b" (escaped to a_40b) differ.
    assert owner_token("a@b") == "a_40b"
    assert owner_token("a_40b") == "a_5f40b"
    long = "x" * 200  # too long to spell: its digest, after a ":" no spelling has
    assert owner_token(long).startswith(":") and owner_token(long + "y") != owner_token(long)
