"""The ASGI application: routers, OCP error envelope for every failure, and the service lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from obfleet import __version__
from obfleet.api import envelope
from obfleet.api.context import RequestFactsMiddleware
from obfleet.api.routes import all_routers
from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.errors import ApiError, ErrorCode
from obfleet.services.lifecycle import start_service, stop_service

log = logging.getLogger("obfleet")

ROUTERS = all_routers()


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"


async def on_api_error(_request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    assert isinstance(exc, ApiError)
    return envelope.error(exc)


async def on_validation_error(_request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    assert isinstance(exc, RequestValidationError)
    causes = "; ".join(_describe(e) for e in exc.errors()[:10])
    return envelope.error(ApiError(ErrorCode.BAD_REQUEST, causes))


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


async def on_unexpected(request: Request, exc: Exception) -> envelope.EnvelopeResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope.error(ApiError(ErrorCode.UNEXPECTED))


def create_app(settings: Settings | None = None, *, run_engine: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.open(settings)
        app.state.ctx = ctx
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
    )
    app.add_middleware(RequestFactsMiddleware)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    for router in ROUTERS:
        app.include_router(router)
    return app
