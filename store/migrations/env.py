"""Alembic's entry point. The store runs migrations programmatically on its own connection
(config.attributes['connection']), inside the transaction that opened it, so a migration is
all or nothing and two replicas starting together migrate one after the other."""

from alembic import context

from store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
