"""The static files shipped in the package, and the pinned third-party ones among them.

Vendored from npm (`npm pack <name>@<version>`), each beside its licence, in
static/vendor/<name>-<version>/: htmx.org 2.0.11 (0BSD), swagger-ui-dist 5.35.0 (Apache-2.0,
with its NOTICE), redoc 2.5.4 (MIT, the standalone bundle). Source-map comments are removed
(the maps are not shipped). To upgrade one: pack the new version, replace its folder, change
the constant here.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"

HTMX_JS = "vendor/htmx-2.0.11/htmx.min.js"
SWAGGER_JS = "vendor/swagger-ui-5.35.0/swagger-ui-bundle.js"
SWAGGER_CSS = "vendor/swagger-ui-5.35.0/swagger-ui.css"
REDOC_JS = "vendor/redoc-2.5.4/redoc.standalone.js"
FAVICON = "vendor/swagger-ui-5.35.0/favicon-32x32.png"
CONSOLE_CSS = "console.css"
CONSOLE_JS = "console.js"


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}"
