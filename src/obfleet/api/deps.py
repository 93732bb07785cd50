"""FastAPI dependencies shared by the routers: the app context and a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: reads for GET, a write transaction (committed when the handler
    returns, before the response is sent) for everything else."""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with get_ctx(request).db.session(write=write) as session:
        yield session
        if write:
            session.commit()


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
