"""FastAPI dependencies shared by the routers: the app context and a database session.

The cheap ones are `async def`: a plain `def` dependency costs a thread-pool hop per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from anyio import CancelScope, to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from obfleet.api.threads import lanes
from obfleet.appcontext import AppContext


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    return app_context(request)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: reads for GET, a write transaction (committed when the handler
    returns, before the response is sent) for everything else.

    Made here, on the event loop: making a session does no I/O (it connects at the handler's
    first query, in the handler's thread). Ending it does, so it runs in a worker thread, the
    commit and the close in one go: one thread-pool hop where a plain generator dependency
    costs two (its start and its end), shielded so a dropped client cannot leave it open, and
    in the endings lane (obfleet.api.threads), which handlers never fill."""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    db = app_context(request).db
    session = db.session(write=write)
    commit = False
    try:
        yield session
        commit = write
    finally:
        if not write and db.dialect == "sqlite":
            # Ending a read on SQLite releases a lock in this process's memory, no I/O: a
            # thread-pool hop would cost more than it.
            _end(session, commit)
        else:
            with CancelScope(shield=True):
                await to_thread.run_sync(_end, session, commit, limiter=lanes(request).endings)


def _end(session: Session, commit: bool) -> None:
    with session:
        if commit:
            session.commit()


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
