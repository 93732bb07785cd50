"""Bringing the service up and down: migrations, the first admin, the task engine."""

from __future__ import annotations

import logging
import sys

from obfleet.appcontext import AppContext
from obfleet.services.users import ensure_admin
from obfleet.store.migrate import upgrade

log = logging.getLogger("obfleet")


def prepare(ctx: AppContext) -> None:
    """Migrate the metadb and make sure user admin exists (printing a generated password once)."""
    upgrade(ctx.db)
    with ctx.db.transaction() as session:
        generated = ensure_admin(session, ctx.settings.admin_password)
    if generated:
        # Printed, not logged: logs are kept, this line is meant to be read once and forgotten.
        print(
            f"obfleet: created user 'admin' with password: {generated}", file=sys.stderr, flush=True
        )


async def start_service(ctx: AppContext, *, run_engine: bool) -> None:
    prepare(ctx)
    log.info("obfleet is up on %s", ctx.db.dialect)


async def stop_service(ctx: AppContext) -> None:
    ctx.close()
