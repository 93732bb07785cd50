"""Who points at a row: found through the foreign keys declared on the metadata, so a table
added later (obproxy links, hosts) protects what it references without touching this code."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from obfleet.store.base import Base


def referencing_tables(session: Session, table: str, row_id: int) -> list[str]:
    """Names of the tables that hold at least one row pointing at `table`.id = row_id."""
    found = []
    for other in Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            # A row deleted with its parent (ON DELETE CASCADE: a package's chunks) is part of
            # it, not a user of it.
            if fk.ondelete == "CASCADE":
                continue
            if fk.column.table.name == table and fk.column.name == "id":
                count = session.scalar(
                    select(func.count()).select_from(other).where(fk.parent == row_id)
                )
                if count:
                    found.append(other.name)
    return sorted(set(found))
