"""Alembic's environment: migrations run on the connection (and in the transaction, under
its lock) that ``chatbot.database.migrate`` passes; no URL, no ``alembic.ini``."""

from alembic import context

from chatbot.database.tables import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
