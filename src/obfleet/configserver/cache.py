"""The config server's answers, kept per process and reused while the metadb's config-server
generation (obfleet.store.models.configserver.GENERATION) stays where it was.

Every OBProxy polls GetObProxyConfig, and observers and OBProxies read ObRootServiceInfo; the
answers change only when a cluster record, a link, an OBProxy cluster or a registration does.
A change committed by any process moves the generation in the same transaction.

An entry is the encoded answer (its `Data` as JSON bytes, or the error) together with the
generation it was computed under, and is served only to a request that takes that same
generation. Since a request takes the generation before it reads the data, an entry is never
older than its generation, whatever the interleaving of requests and commits.

The generation itself is read from the metadb (one primary-key lookup on a bare connection) and
then trusted, with no metadb access at all, until this process commits a bump of it
(`Counter.local`) or `staleness_s` (OBFLEET_CONFIGSERVER_STALENESS, default 1 s) has passed
since it was read. The same rule on every dialect, and so the staleness each allows:
- a change committed through this process (this replica, or the one process on a SQLite file)
  is in its very next answer: none;
- a change committed through another replica on PostgreSQL or MySQL, or written to a SQLite
  file by another process (an operator's script, `obfleet` commands run beside `serve`), is in
  every answer to a request that starts `staleness_s` or more after its commit; before that, an
  answer may still be the one computed before it. An OBProxy refreshes what it read from the
  config server every `config_server_refresh_interval` (60 s by default, 10 s at least), so
  1 s is small beside the delay it has anyway.
`staleness_s` = 0 reads the generation on every request: no staleness anywhere, at one metadb
lookup per answer.
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
    def __init__(
        self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self.stats = Stats()
        self._entries: OrderedDict[Key, tuple[int, Outcome]] = OrderedDict()
        self._lock = threading.Lock()
        # (generation, this process's committed bumps when it was read, when it was read)
        self._known: tuple[int, int, float] | None = None

    def generation(
        self, read: Callable[[], int | None], local: LocalBumps, staleness_s: float
    ) -> int | None:
        """The generation: the value `read()` from the metadb before, while `local` (this
        process's committed bumps) has not moved since and for less than `staleness_s`; else
        `read()` now. The count and the time are taken before the read, so a bump committed
        meanwhile makes the next call read again, and a value is never trusted for longer than
        `staleness_s` after the read began."""
        trusted = self.trusted(local, staleness_s)
        if trusted is not None:
            return trusted
        bumps, now = local.count, self.clock()
        value = read()
        self._known = None if value is None else (value, bumps, now)
        return value

    def trusted(self, local: LocalBumps, staleness_s: float) -> int | None:
        """The generation read before, while it may still be trusted without a read; else
        None."""
        known = self._known
        if known is None or known[1] != local.count or self.clock() - known[2] >= staleness_s:
            return None
        return known[0]

    @staticmethod
    def key(base_url: str, params: Mapping[str, str]) -> Key:
        return base_url, tuple((name, params[name]) for name in KEY_PARAMS if name in params)

    def get(self, key: Key, generation: int) -> Outcome | None:
        found = self.peek(key, generation)
        if found is None:
            self.stats.misses += 1
        return found

    def peek(self, key: Key, generation: int) -> Outcome | None:
        """The answer kept for `key` under `generation`, counted as a hit; a miss is not
        counted (the caller goes on to `get`)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
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
