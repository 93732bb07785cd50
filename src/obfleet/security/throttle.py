"""Login throttling: failed password logins counted per (username, client address).

After `max_failures` failures in a row a pair is locked for `lock_seconds`; a success clears
its count. Only that pair is locked: the same user from another address, and other users from
the same address, log in as before, so a flood cannot lock an operator out from afar.

Only failures count, so a client's concurrent first requests with the right password never lock
it out. A burst of concurrent guesses is checked for the lock again just before each password
check (obfleet.api.auth), so guesses that queued while the pair got locked are refused unchecked.

Kept in memory, per process: each replica counts the attempts it receives, and a restart forgets
them. The map is bounded: past `max_entries` the pair touched longest ago is dropped. Filling it
takes one password check per pair, which the bounded check pool (obfleet.api.auth) spreads over
far longer than a lock lasts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 100_000

Pair = tuple[str, str]  # (username, client address)


class LoginLocked(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass
class _Count:
    failures: int
    until: float  # locked until then once failures reach the limit; else forgotten then


class LoginThrottle:
    def __init__(
        self,
        max_failures: int,
        lock_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._counts: OrderedDict[Pair, _Count] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, pair: Pair) -> None:
        """Raise LoginLocked while the pair is locked."""
        now = self._clock()
        with self._lock:
            count = self._counts.get(pair)
            if count is not None and count.failures >= self.max_failures and count.until > now:
                raise LoginLocked(max(1, math.ceil(count.until - now)))

    def failed(self, pair: Pair) -> int:
        """Count a failure; return the tries left before the pair is locked."""
        now = self._clock()
        with self._lock:
            count = self._counts.get(pair)
            if count is None or count.until <= now:
                count = _Count(0, now)
            count.failures += 1
            count.until = now + self.lock_seconds
            self._counts[pair] = count
            self._counts.move_to_end(pair)
            while len(self._counts) > self.max_entries:
                self._counts.popitem(last=False)
            return max(0, self.max_failures - count.failures)

    def succeeded(self, pair: Pair) -> None:
        with self._lock:
            self._counts.pop(pair, None)

    def __len__(self) -> int:
        return len(self._counts)
