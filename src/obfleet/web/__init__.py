"""The web side of `obfleet serve`: the console, /docs and /redoc, and their static files.

None of it is part of /openapi.json; the API stays what the routers in obfleet.api declare.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from obfleet.web import console, docs
from obfleet.web.assets import STATIC_DIR, STATIC_PREFIX


def mount(app: FastAPI) -> None:
    """Serve the console, the API docs and the static files from `app`."""
    app.include_router(docs.router)
    docs.declare_basic_auth(app)
    app.include_router(console.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
