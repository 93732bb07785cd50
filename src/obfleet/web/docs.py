"""/docs (Swagger UI) and /redoc from assets shipped in the package: OceanBase often runs
without internet, where a CDN-served page stays blank. No http(s) URL appears in either page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from obfleet.web.assets import FAVICON, REDOC_JS, SWAGGER_CSS, SWAGGER_JS, static_url

router = APIRouter(include_in_schema=False)

OPENAPI_URL = "/openapi.json"
TITLE = "obfleet API"
# The browser itself refuses anything from elsewhere: ReDoc's footer shows a logo from its CDN,
# which would otherwise be fetched. (Swagger UI's page starts it with an inline script; ReDoc
# renders its styles inline and searches in a worker from a blob.)
OWN_ASSETS_ONLY = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:"
}


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=TITLE,
        swagger_js_url=static_url(SWAGGER_JS),
        swagger_css_url=static_url(SWAGGER_CSS),
        swagger_favicon_url=static_url(FAVICON),
        # Swagger UI would otherwise send the document to validator.swagger.io for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers.update(OWN_ASSETS_ONLY)
    return page


@router.get("/redoc")
def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=TITLE,
        redoc_js_url=static_url(REDOC_JS),
        redoc_favicon_url=static_url(FAVICON),
        with_google_fonts=False,
    )
    page.headers.update(OWN_ASSETS_ONLY)
    return page


def declare_basic_auth(app: FastAPI) -> None:
    """Swagger UI sends credentials only for a security scheme the document declares. Where the
    API's document declares none, HTTP Basic is declared for every operation (the public ones
    ignore it), so Authorize and "Try it out" work; a document with its own schemes is kept."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        components = document.setdefault("components", {})
        if "securitySchemes" not in components:
            components["securitySchemes"] = {"basicAuth": {"type": "http", "scheme": "basic"}}
            document.setdefault("security", [{"basicAuth": []}])
        return document

    app.openapi = openapi  # type: ignore[method-assign]
