"""Bringing the service up and down: migrations, the first admin, the task engine and the
OBProxy health checks."""

from __future__ import annotations

import logging
import socket

from sqlalchemy.exc import IntegrityError

from obfleet.appcontext import AppContext
from obfleet.engine.runner import TaskEngine
from obfleet.monitor.health import HealthMonitor
from obfleet.security.first_password import keep, notice
from obfleet.services.users import ensure_admin
from obfleet.store.key_verifier import check_secret_key
from obfleet.store.migrate import upgrade

log = logging.getLogger("obfleet")

# ctx.extras key: the notice of admin's generated password, for the process to show once it
# listens (last, so that it is not lost among the start-up lines).
FIRST_ADMIN_NOTICE = "first_admin_notice"


def prepare(ctx: AppContext) -> str | None:
    """Migrate the metadb and make sure user admin exists. When admin was made with a generated
    password: the notice that shows it (the password is also kept in the data dir until admin
    first logs in)."""
    upgrade(ctx.db)
    check_secret_key(ctx.db, ctx.secrets, ctx.settings.data_dir)
    try:
        with ctx.db.transaction() as session:
            generated = ensure_admin(
                session, ctx.settings.admin_password, ctx.settings.admin_password_hash
            )
    except IntegrityError:
        generated = None  # a replica starting at the same moment made admin first
    if generated is None:
        return None
    # Shown, never logged: logs are kept, this is meant to be read once and changed.
    return notice(generated, keep(ctx.settings.data_dir, generated))


def node_address(ctx: AppContext) -> str:
    """How this replica names itself as a task `executor`."""
    return ctx.settings.advertise_url or socket.gethostname()


async def start_service(ctx: AppContext, *, run_engine: bool) -> None:
    first_admin = prepare(ctx)
    if first_admin:
        ctx.extras[FIRST_ADMIN_NOTICE] = first_admin
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
