"""The config server's answers, kept per process and reused while the metadb's config-server
generation (obfleet.store.models.configserver.GENERATION) stays where it was.

Every OBProxy polls GetObProxyConfig, and observers and OBProxies read ObRootServiceInfo; the
answers change only when a cluster record, a link, an OBProxy cluster or a registration does.
A read then costs one primary-key lookup of the generation; a change committed by any replica
moves the generation in the same transaction, so the next read everywhere computes afresh.

An entry is the encoded answer (its `Data` as JSON bytes, or the error) together with the
generation it was computed under, and is served only to a request that read that same
generation. Since a request reads the generation before the data, an entry is never older than
its generation, whatever the interleaving of requests and commits.

On SQLite one process serves the metadb, so the generation moves by this process's own
commits: the value read is reused, without a metadb read, until this process commits a bump
(`Counter.local`), and for at most SOLE_RECHECK_S, so that a change written by another process
(an operator's script on the file) is seen within that time. Replicas on PostgreSQL or MySQL
read it on every request (one primary-key lookup on a bare connection): a change through one
replica is in the other's very next answer, with no staleness at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from obfleet.store.db import PerDatabase
from obfleet.store.generation import LocalBumps

# What answers are bounded by: a poller with a cache-busting parameter gets nothing from it,
# since only the parameters the read actions look at are part of the key.
MAX_ENTRIES = 1024
KEY_PARAMS = (
    "Action",
    "ObCluster",
    "ObRegion",
    "ObClusterId",
    "ObRegionId",
    "version",
    "VersionOnly",
    "ObproxyClusterName",
)

Key = tuple[str, tuple[tuple[str, str], ...]]
# How long a SQLite metadb's generation is trusted without a read while this process has not
# moved it: the most a change written to the file by another process waits to be served.
SOLE_RECHECK_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """An answer ready to be wrapped in the envelope: `Code`, `Message`, the HTTP status and
    `Data` already encoded as JSON."""

    code: int
    message: str
    http_status: int
    data: bytes


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    uncached: int = 0  # no generation row: computed, not kept


class AnswerCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.stats = Stats()
        self._entries: OrderedDict[Key, tuple[int, Outcome]] = OrderedDict()
        self._lock = threading.Lock()
        # (generation, this process's committed bumps when it was read, when it was read)
        self._known: tuple[int, int, float] | None = None

    def generation(
        self, read: Callable[[], int | None], local: LocalBumps, sole: bool
    ) -> int | None:
        """The generation: `read()` from the metadb, or, when this process is its `sole` user,
        the value read before while `local` (its own committed bumps) has not moved. The count
        is taken before the read, so a bump committed meanwhile makes the next call read again."""
        bumps, now = local.count, time.monotonic()
        known = self._known
        if sole and known is not None and known[1] == bumps and now - known[2] < SOLE_RECHECK_S:
            return known[0]
        value = read()
        if sole and value is not None:
            self._known = (value, bumps, now)
        return value

    @staticmethod
    def key(base_url: str, params: Mapping[str, str]) -> Key:
        return base_url, tuple((name, params[name]) for name in KEY_PARAMS if name in params)

    def get(self, key: Key, generation: int) -> Outcome | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry[1]

    def put(self, key: Key, generation: int, outcome: Outcome) -> None:
        with self._lock:
            self._entries[key] = (generation, outcome)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# The process's cache for one metadb (one per Database object).
cache_for: PerDatabase[AnswerCache] = PerDatabase(AnswerCache)
