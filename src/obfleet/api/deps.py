"""FastAPI dependencies shared by the routers: the app context and a database session.

The cheap ones are `async def`: a plain `def` dependency costs a thread-pool hop per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    return app_context(request)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: reads for GET, a write transaction (committed when the handler
    returns, before the response is sent) for everything else."""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with app_context(request).db.session(write=write) as session:
        yield session
        if write:
            session.commit()


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
