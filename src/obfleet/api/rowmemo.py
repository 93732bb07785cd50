"""The big list pages' rows, each kept encoded by what it was built from, per metadb and process.

A listed row's JSON is a function of the stored values read for it (its own row and its parts'
rows) and of process constants (the local zone, the server's own URL when it is in the key).
So a page reads its rows from the metadb as always, every time, and only the rows whose values
differ from those the kept JSON was built from are built and encoded again: a change is seen
at its first read after the commit, through any replica, and a row read again unchanged costs
the comparison of its values instead of its dict, its times and its encoding (most of a page of
2,000). The envelope takes the kept rows as `orjson.Fragment`s, written as they are.

What a key stands for is the caller's promise, and each page says how it keeps it:
- stored values alone (a cluster: its row, its links' and obproxies' rows, the base URL): the
  JSON is a pure function of them, whoever read them, whenever;
- a row with a version that stands for parts not read (a task: `task_instance.version` is
  bumped by every change to the task or its subtasks, api/taskviews.py): the parts are read
  after the version, so kept JSON is never older than its key. Such a key is only as good as
  the commit that made it, so write sessions neither use nor fill the memo: their rollback
  could hand the version they saw to a different change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session

from obfleet.api.envelope import encoded
from obfleet.store.db import PerDatabase, writes

# Rows per kind (clusters, tasks), metadb and process: two full pages of 2,000. A kept row
# took 1.2 KiB (a task) to 1.6 KiB (a cluster with a link and no obproxy; each obproxy adds
# its own row and JSON) with its key's values (tracemalloc), so 5-7 MiB per kind when full.
ROWS_KEPT = 4096

# One row of a page: its id and the values its JSON is built from (compared, never hashed:
# parts may be lists, and must not change once given).
Keyed = tuple[int, Any]
# Builds the JSON form of the rows at some positions of the page, in that order.
Build = Callable[[Sequence[int]], Sequence[Any]]


class EncodedRows:
    """One kind of row's encoded JSON by id, each with the values it was built from; the
    least recently read dropped past `size`."""

    def __init__(self, size: int = ROWS_KEPT) -> None:
        self.size = size
        self._rows: OrderedDict[int, tuple[Any, orjson.Fragment]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, keyed: Sequence[Keyed], build: Build) -> list[Any]:
        """The page's rows in order: kept ones as they were encoded, the others built, encoded
        and kept."""
        shown: list[Any] = self._kept(keyed)
        missed = [position for position, row in enumerate(shown) if row is None]
        if missed:
            fresh = [encoded(row) for row in build(missed)]
            for position, row in zip(missed, fresh, strict=True):
                shown[position] = row
            self._keep([keyed[position] for position in missed], fresh)
        return shown

    def _kept(self, keyed: Sequence[Keyed]) -> list[orjson.Fragment | None]:
        """The kept JSON of each row whose values are those given, else None. One lock for
        the page: a lookup is far cheaper than taking the lock."""
        shown: list[orjson.Fragment | None] = []
        with self._lock:
            for row_id, key in keyed:
                kept = self._rows.get(row_id)
                if kept is not None and kept[0] == key:
                    self._rows.move_to_end(row_id)
                    shown.append(kept[1])
                else:
                    shown.append(None)
        return shown

    def _keep(self, keyed: Sequence[Keyed], fresh: Sequence[orjson.Fragment]) -> None:
        # A slower reader may keep older values over newer ones: the next read of the newer
        # misses and builds again. Every hit compares the whole key, so none is ever wrong.
        with self._lock:
            for (row_id, key), row in zip(keyed, fresh, strict=True):
                self._rows[row_id] = (key, row)
                self._rows.move_to_end(row_id)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


def page_rows(
    kept: EncodedRows | None, session: Session, keyed: Sequence[Keyed], build: Build
) -> list[Any]:
    """A page's rows (`keyed`: each row's id and key, in page order): through `kept` when
    given and `session` writes nothing, else all built (as dicts)."""
    if kept is None or writes(session):
        return list(build(range(len(keyed))))
    return kept.page(keyed, build)


# One per metadb (ids mean nothing across metadbs), gone with it.
cluster_rows_kept: PerDatabase[EncodedRows] = PerDatabase(EncodedRows)
task_rows_kept: PerDatabase[EncodedRows] = PerDatabase(EncodedRows)
