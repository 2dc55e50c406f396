"""Fixtures of the integration tests: the store fixture over both databases."""

from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.stores import database_url, second_store, store  # noqa: F401 (fixtures)
