"""Alembic environment: obfleet runs migrations itself (obfleet migrate, and at start)."""

from __future__ import annotations

from alembic import context

from obfleet.store import models  # noqa: F401 - registers every table
from obfleet.store.base import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
