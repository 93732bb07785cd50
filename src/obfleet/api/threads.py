"""The API's worker threads: how many run request handlers at once, and the lanes kept apart
from them for work that must never queue behind a handler.

FastAPI runs each plain `def` handler and dependency in anyio's default thread pool, 40
threads. Here they would only contend: one GIL runs them all, and on SQLite the metadb's work
is this process's own CPU. Every SQLite call releases the GIL and takes it back, so with many
threads busy each call hands the GIL over and waits to get it back. With 8 busy clients
(bench/fleet.py, SQLite, bench/ISSUE18.md), a default list page cost 1.52 ms of server CPU with
40 threads, 1.34 with 4 and 1.06 with 2; on PostgreSQL, 2.06 ms with 40 and 1.67 with 4, and
creates went from 39 to 49 a second. A server metadb keeps a few more threads than SQLite: one
waiting on the metadb's answer leaves the GIL to the others.

Two lanes have limiters of their own:
- `endings`: ending a request's metadb session (its commit) after the handler returned. A
  write session keeps SQLite's write turn (store.db) until then; were its ending to queue
  behind handlers waiting for that turn, none would move until their wait ran out.
- `remote`: handlers that wait on other machines (live `show proxyconfig` from every
  OBProxy, seconds when one is down) rather than on the metadb.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Request

from obfleet.config import Settings

T = TypeVar("T")

HANDLER_THREADS = {"sqlite": 2}
SERVER_METADB_HANDLER_THREADS = 4
# Sessions ended at once: as many as anyio's own default, so that endings never wait long.
ENDING_THREADS = 40
# Handlers waiting on OBProxies at once; each such read runs its own pool of connections.
REMOTE_THREADS = 8


def handler_threads(settings: Settings, dialect: str) -> int:
    return settings.request_threads or HANDLER_THREADS.get(dialect, SERVER_METADB_HANDLER_THREADS)


class Lanes:
    """One app's worker-thread limits. Made in the app's lifespan, inside its event loop,
    which anyio's default limiter and these belong to."""

    def __init__(self, handlers: int) -> None:
        to_thread.current_default_thread_limiter().total_tokens = handlers
        self.endings = CapacityLimiter(ENDING_THREADS)
        self.remote = CapacityLimiter(REMOTE_THREADS)


def lanes(request: Request) -> Lanes:
    found: Lanes = request.app.state.lanes
    return found


async def run_remote(request: Request, work: Callable[[], T]) -> T:
    """`work`, which waits on other machines, in a worker thread of the remote lane."""
    return await to_thread.run_sync(work, limiter=lanes(request).remote)
