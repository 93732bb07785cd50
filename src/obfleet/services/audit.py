"""Changes made outside the API (the `obfleet` server commands) recorded in the audit trail
like the API's (api/audit.py): who ran them (the OS user), what, on which object, the outcome."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from obfleet.appcontext import AppContext
from obfleet.errors import ApiError
from obfleet.records import audit
from obfleet.records.audit import Change

CLI_ROUTE = "cli"
CLI_ADDRESS = "local"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME (a bare container)
        return "unknown"


@contextmanager
def audited(ctx: AppContext, action: str, object_type: str, object_id: str) -> Iterator[None]:
    """Record the change made inside, with its outcome (an ApiError's code, or 500 for any
    other failure), once it committed or failed."""
    status, code = 500, None
    try:
        yield
        status = 200
    except ApiError as exc:
        status, code = exc.http_status, exc.error_code.code
        raise
    finally:
        if ctx.settings.audit_enabled:
            with ctx.db.transaction() as session:
                audit.record(
                    session,
                    Change(
                        action=action,
                        method="CLI",
                        route=CLI_ROUTE,
                        status=status,
                        username=_os_user(),
                        client_address=CLI_ADDRESS,
                        object_type=object_type,
                        object_id=object_id,
                        error_code=code,
                    ),
                )
