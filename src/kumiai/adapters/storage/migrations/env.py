"""Alembic environment: kumiai passes its own connection in, so URL handling stays in one place."""

from alembic import context

from kumiai.adapters.storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: build an engine from the ini URL
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
