"""What a flow's step reaches through its context, typed: obfleet's resources (the engine hands
them over as `ctx.resources`), the metadb on a worker thread, and a host over SSH."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.engine.context import SubtaskContext
from obfleet.hosts.ssh import SshConnection
from obfleet.records import host_access

T = TypeVar("T")


class StepError(RuntimeError):
    """A step cannot go on; the message says what is wrong where, and what to do."""


def app(ctx: SubtaskContext) -> AppContext:
    resources: AppContext = ctx.resources
    return resources


async def read(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    """`fn` in a read-only session, in a worker thread."""

    def run() -> T:
        with app(ctx).db.session() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def write(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    """`fn` in a transaction, in a worker thread."""

    def run() -> T:
        with app(ctx).db.transaction() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def connect(ctx: SubtaskContext, host_id: int) -> SshConnection:
    """The pooled SSH connection to a recorded host."""
    return await host_access.connect(app(ctx), host_id)
