"""Bringing the service up and down: migrations, the first admin, the task engine and the
OBProxy health checks."""

from __future__ import annotations

import logging
import socket
import sys

from sqlalchemy.exc import IntegrityError

from obfleet.appcontext import AppContext
from obfleet.engine.runner import TaskEngine
from obfleet.monitor.health import HealthMonitor
from obfleet.services.users import ensure_admin
from obfleet.store.key_verifier import check_secret_key
from obfleet.store.migrate import upgrade

log = logging.getLogger("obfleet")


def prepare(ctx: AppContext) -> None:
    """Migrate the metadb and make sure user admin exists (printing a generated password once)."""
    upgrade(ctx.db)
    check_secret_key(ctx.db, ctx.secrets, ctx.settings.data_dir)
    try:
        with ctx.db.transaction() as session:
            generated = ensure_admin(
                session, ctx.settings.admin_password, ctx.settings.admin_password_hash
            )
    except IntegrityError:
        generated = None  # a replica starting at the same moment made admin first
    if generated:
        # Printed, not logged: logs are kept, this line is meant to be read once and forgotten.
        print(
            f"obfleet: created user 'admin' with password: {generated}", file=sys.stderr, flush=True
        )


def node_address(ctx: AppContext) -> str:
    """How this replica names itself as a task `executor`."""
    return ctx.settings.advertise_url or socket.gethostname()


async def start_service(ctx: AppContext, *, run_engine: bool) -> None:
    prepare(ctx)
    if ctx.metrics is not None:
        ctx.metrics.watch_pool(ctx.db.engine)
    if run_engine:
        engine = TaskEngine(
            ctx.db,
            node_address=node_address(ctx),
            resources=ctx,
            concurrency=ctx.settings.engine_concurrency,
            observer=ctx.metrics,
        )
        await engine.start()
        ctx.engine = engine
        if ctx.metrics is not None:
            ctx.metrics.watch_ready_queue(engine.store.ready_count)
        if ctx.settings.health_interval_s > 0:
            health = HealthMonitor(
                ctx.db,
                ctx.secrets,
                interval=ctx.settings.health_interval_s,
                timeout=ctx.settings.health_timeout_s,
                metrics=ctx.metrics,
            )
            health.start()
            ctx.extras["health"] = health
    log.info("obfleet is up on %s", ctx.db.dialect)


async def stop_service(ctx: AppContext) -> None:
    health = ctx.extras.pop("health", None)
    if health is not None:
        await health.stop()
    if ctx.engine is not None:
        await ctx.engine.stop()
        ctx.engine = None
    await ctx.ssh.close_all()
    ctx.close()
