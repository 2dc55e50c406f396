"""Alembic's environment: migrations run on the connection ``chatbot.store.migrate`` passes.

No URL, no ``alembic.ini``: the store opens the database and runs the upgrade inside its
own transaction (under the lock that orders processes starting at once).
"""

from alembic import context

from chatbot.store.tables import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
