"""Alembic environment: the URL comes from the caller (server.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from server.db import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None  # noqa: S101 - set by server.db.migrate
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
