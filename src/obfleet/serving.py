"""Running the service: the port is taken before anything else, and the first admin's
generated password is shown last, once the service listens.

Binding first means a start that cannot listen (the port is taken, the address is not this
machine's) fails before it creates a metadb, a user or a password that nobody would see.
"""

from __future__ import annotations

import errno
import gc
import logging
import socket

import uvicorn
from fastapi import FastAPI

from obfleet import logs
from obfleet.services.lifecycle import FIRST_ADMIN_NOTICE

log = logging.getLogger("obfleet")

# What to do about the errors a bind usually meets.
BIND_ADVICE = {
    errno.EADDRINUSE: "another process listens there: stop it, or choose another --port",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address: choose another --host",
    errno.EACCES: "ports below 1024 need privileges: choose a --port of 1024 or more",
}


class ListenError(RuntimeError):
    """The service cannot listen where it was asked to."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (connections wait in its backlog until the service is
    up), or ListenError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on connections whose
    # socket says it is TCP. Without it uvicorn's answer, written as head then body, waits for
    # the client's delayed ACK: 40 ms per request on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # listening at once: a bound socket alone does not keep others off
    except OSError as exc:
        sock.close()
        advice = BIND_ADVICE.get(exc.errno or 0, "")
        raise ListenError(
            f"cannot listen on {host}:{port}: {exc.strerror}" + (f" ({advice})" if advice else "")
        ) from exc
    return sock


# Net container objects made between two collections of the cyclic GC's youngest generation
# (Python's default: 700). A page of 2,000 rows holds ~10,000 at once: at 700, each such page
# started ~12 young collections and, every ~10 pages, a full one.
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once the service is up: freeze what it made to start (modules, the app, its routes and
    schemas: ~170,000 objects that live as long as the process), so that the cyclic GC's full
    collections no longer walk them, and collect the youngest generation less often. Before,
    a page of 2,000 rows cost 12 ms of GC (full collections of 118 ms every ~10 pages), more
    than building it; after, 0.15 ms (gc.callbacks, in-process, tasks?size=2000)."""
    gc.collect()  # what is garbage now is not kept forever
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


class Server(uvicorn.Server):
    """uvicorn on a socket bound beforehand, showing the first admin's password once it is up."""

    def __init__(self, config: uvicorn.Config, api: FastAPI) -> None:
        super().__init__(config)
        self.api = api

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        settle_heap()
        for sock in sockets or []:
            host, port = sock.getsockname()[:2]
            log.info("obfleet listens on http://%s:%d", f"[{host}]" if ":" in host else host, port)
        first_admin = self.api.state.ctx.extras.pop(FIRST_ADMIN_NOTICE, None)
        if first_admin:
            logs.show(first_admin)
