"""The ASGI application: routers, OCP error envelope for every failure, and the service lifespan."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine, event
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from obfleet import __version__, web
from obfleet.api import envelope
from obfleet.api.audit import AuditMiddleware
from obfleet.api.auth import Logins
from obfleet.api.body_limit import BodyLimitMiddleware
from obfleet.api.context import RequestFactsMiddleware
from obfleet.api.openapi import document_api
from obfleet.api.routes import all_routers
from obfleet.api.signed_body import SignedBodyMiddleware
from obfleet.api.threads import Lanes, handler_threads
from obfleet.api.unknown_fields import describe as describe_unknown
from obfleet.api.unknown_fields import is_unknown_field
from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.services.lifecycle import start_service, stop_service
from obfleet.store.outage import first_line, is_disk_full

log = logging.getLogger("obfleet")

ROUTERS = all_routers()


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"


async def on_api_error(_request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    assert isinstance(exc, ApiError)
    return envelope.error(exc)


async def on_validation_error(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    unknown = [e for e in errors if is_unknown_field(e)]
    causes = [_describe(e) for e in errors if not is_unknown_field(e)][:10]
    if unknown:
        body_field = getattr(request.scope.get("route"), "body_field", None)
        body_type = body_field.field_info.annotation if body_field is not None else None
        causes.insert(0, describe_unknown(body_type, unknown))
    return envelope.error(ApiError(ErrorCode.BAD_REQUEST, "; ".join(causes)))


async def on_http_error(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        err = ApiError(ErrorCode.NOT_FOUND, f"No route {request.url.path}.")
    elif exc.status_code == 405:
        err = ApiError(ErrorCode.METHOD_NOT_ALLOWED, request.method, request.url.path)
    else:
        err = ApiError(ErrorCode.BAD_REQUEST, str(exc.detail))
    response = envelope.error(err)
    if exc.status_code not in (404, 405):  # keep the status Starlette chose (e.g. 413)
        response.status_code = exc.status_code
    return response


# --- numbers the metadb cannot hold ------------------------------------------------------------
#
# An id or count in a request can be any size, but every integer column is at most a BIGINT.
# Left to the database, such a number is a 500 (SQLite's OverflowError, PostgreSQL's DataError),
# or on MariaDB an ordinary "not found" or empty page. So every statement's parameters are checked
# before they reach the driver, the same way on every database; the handlers below are the safety
# net for what still gets through (an INTEGER column, a text too long for its column).

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OUT_OF_RANGE = "a number is out of range"


def _parameter_values(parameters: Any) -> Iterable[Any]:
    """Every value of one parameter set or of many (a tuple, a dict or a list of them, by
    driver and execution style: insertmanyvalues flattens a batch into one set)."""
    if isinstance(parameters, Mapping):
        parameters = parameters.values()
    elif not isinstance(parameters, list | tuple):
        yield parameters
        return
    for value in parameters:
        if isinstance(value, Mapping | list | tuple):
            yield from _parameter_values(value)
        else:
            yield value


def refuse_out_of_range(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
) -> None:
    """before_cursor_execute: a 400 for an integer no BIGINT column can hold."""
    for value in _parameter_values(parameters):
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            # Python refuses str() of ints past 4300 digits; requests never get that far.
            text = str(value) if value.bit_length() < 14_000 else "this number"
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise bad_request(f"{OUT_OF_RANGE}: {shown} does not fit in a 64-bit integer")


def guard_integers(engine: Engine) -> None:
    if not event.contains(engine, "before_cursor_execute", refuse_out_of_range):
        event.listen(engine, "before_cursor_execute", refuse_out_of_range)


def _out_of_range(exc: BaseException) -> ApiError | None:
    """The 400 for an error the request's data caused in the database, else None."""
    if isinstance(exc, DataError):
        # PostgreSQL / MariaDB: a number too large for its column, or a text too long.
        return bad_request(f"{OUT_OF_RANGE}, or a text too long, for the database")
    cause = exc.orig if isinstance(exc, StatementError) else exc
    if isinstance(cause, OverflowError):
        # SQLite: "Python int too large to convert to SQLite INTEGER" (wrapped in a
        # StatementError when a bind processor meets it).
        return bad_request(f"{OUT_OF_RANGE}: integers must fit in 64 bits")
    return None


async def on_data_error(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    err = _out_of_range(exc)
    if err is None:
        # Any other statement failure is a server bug: on to on_unexpected (500), unchanged.
        raise exc
    log.info("refused %s %s: %s", request.method, request.url.path, exc)
    return envelope.error(err)


async def on_metadb_error(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    """503 while the metadb cannot be reached, 507 when it has no space left; answered here,
    inside the request's middleware, so the answer carries the request's trace id and the
    connection stays open (an error left to the outermost handler resets it)."""
    ctx: AppContext = request.app.state.ctx
    if ctx.db.outage.noted(exc):
        return envelope.error(
            ApiError(ErrorCode.METADB_UNREACHABLE, ctx.db.outage.where, first_line(exc))
        )
    if is_disk_full(exc):
        place = _metadb_place(ctx)
        log.error("no space left on %s: %s", place, first_line(exc))
        return envelope.error(ApiError(ErrorCode.NO_SPACE_LEFT, place))
    return await on_data_error(request, exc)


def _metadb_place(ctx: AppContext) -> str:
    if ctx.settings.database_url:
        return f"the metadb ({ctx.db.outage.where})"
    return f"the data dir {ctx.settings.data_dir} (it holds the SQLite metadb)"


async def on_os_error(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    """507 for a file obfleet could not write for want of space (an upload, the package cache):
    they all live in the data dir."""
    assert isinstance(exc, OSError)
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        raise exc  # on to on_unexpected (500), unchanged
    settings: Settings = request.app.state.ctx.settings
    log.error("no space left on the data dir %s: %s", settings.data_dir, exc)
    return envelope.error(ApiError(ErrorCode.NO_SPACE_LEFT, f"the data dir {settings.data_dir}"))


async def on_unexpected(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope.error(ApiError(ErrorCode.UNEXPECTED))


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put `router`'s routes in the app's own list. Each route already carries its router's
    prefix, tags and dependencies (APIRouter applies them as it makes the route), so this is
    what `include_router` adds, less its per-request cost: FastAPI (0.16x) keeps an included
    router as a branch it walks twice per request (to match, then again to handle), with
    bookkeeping at every level: to reach `/api/v2/time`, 0.14-0.2 ms, about as much as the
    rest of its answer (bench/ISSUE18.md)."""
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None, *, run_engine: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.open(settings)
        guard_integers(ctx.db.engine)
        app.state.ctx = ctx
        app.state.logins = Logins(settings)
        app.state.lanes = Lanes(handler_threads(settings, ctx.db.dialect))
        await start_service(ctx, run_engine=run_engine)
        try:
            yield
        finally:
            await stop_service(ctx)

    app = FastAPI(
        title="obfleet",
        version=__version__,
        description="OBProxy fleet manager with an OCP-compatible REST API (OCP API v2). "
        "Endpoints tagged `extension` go beyond OCP's documented API.",
        lifespan=lifespan,
        docs_url=None,  # served by obfleet.web from the package's own assets (offline)
        redoc_url=None,
    )
    app.add_middleware(SignedBodyMiddleware)  # inside the body cap, which it reads under
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(AuditMiddleware)  # inside the request facts, whose log fields it reads
    app.add_middleware(RequestFactsMiddleware)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for kind in (OverflowError, DataError, StatementError):
        app.add_exception_handler(kind, on_data_error)
    app.add_exception_handler(DBAPIError, on_metadb_error)
    app.add_exception_handler(OSError, on_os_error)
    app.add_exception_handler(Exception, on_unexpected)
    for router in ROUTERS:
        add_routes(app, router)
    document_api(app)
    web.mount(app)
    return app
