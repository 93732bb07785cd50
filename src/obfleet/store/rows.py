"""Reading what belongs to a page of rows (a task page's subtasks, a cluster page's links and
obproxies) in one statement, whatever the page's size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam
from sqlalchemy.orm import Session


class RowsOfIds:
    """`stmt`'s rows whose `column` is one of some ids, with the statement made once in two
    forms: the ids listed (an expanding IN) and the range from the lowest to the highest.

    Most pages hold ids close together (ordered by id, unfiltered), and for them the range is
    cheaper: two bound values instead of one per id (SQLAlchemy spent ~1 us an id expanding
    the list, SQLite sorted it again), one range scan of the index. A range may also give rows
    of ids between the page's: callers pick their own rows by id.
    """

    # A range at most this many times as wide as the ids it must cover.
    SPREAD = 2

    def __init__(self, stmt: Select[Any], column: ColumnElement[int]) -> None:
        self.selected_columns = stmt.selected_columns
        self._listed = stmt.where(column.in_(bindparam("ids", expanding=True)))
        self._ranged = stmt.where(column.between(bindparam("low"), bindparam("high")))

    def rows(self, session: Session, ids: Sequence[int]) -> Sequence[Row[Any]]:
        if not ids:
            return []
        low, high = min(ids), max(ids)
        if high - low < self.SPREAD * len(ids):
            return session.execute(self._ranged, {"low": low, "high": high}).all()
        return session.execute(self._listed, {"ids": list(ids)}).all()


# A row's values as a plain tuple: what a Row holds, but compared at C speed (a Row compares
# through Python code, ten times slower; api/rowmemo.py compares a page's parts each read).
Values = tuple[Any, ...]


def grouped(rows: Sequence[Row[Any]]) -> dict[int, list[Values]]:
    """Rows' values by their first column (the id of what they belong to), in their order."""
    by_owner: dict[int, list[Values]] = defaultdict(list)
    for row in rows:
        by_owner[row[0]].append(tuple(row))
    return by_owner
