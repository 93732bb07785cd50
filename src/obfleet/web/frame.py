"""What every console page shares: who is looking (from the session cookie), rendering with the
page's security headers, and the answers to a missing login or an API refusal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from obfleet.api.auth import session_principal
from obfleet.api.deps import app_context
from obfleet.api.sessions import COOKIE, ConsoleSession, open_session
from obfleet.errors import ApiError
from obfleet.security.roles import READ, WRITE, Resource
from obfleet.services.users import Principal
from obfleet.timefmt import utcnow
from obfleet.web.apicalls import Api, ApiRefused
from obfleet.web.assets import CONSOLE_CSS, CONSOLE_JS, FAVICON, HTMX_JS, static_url
from obfleet.web.messages import text

PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
HOME_PATH = f"{PREFIX}/clusters"

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(
    t=text,
    static=static_url,
    assets={"css": CONSOLE_CSS, "js": CONSOLE_JS, "htmx": HTMX_JS, "favicon": FAVICON},
    prefix=PREFIX,
)

# Pages load only what the package serves; htmx adds its indicator styles inline. A page of the
# console is never framed (a hidden frame could trick a click on a confirm button).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Viewer:
    """The logged-in user looking at a page, and the API as that user."""

    principal: Principal
    session: ConsoleSession
    api: Api

    @property
    def username(self) -> str:
        return self.principal.username

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def can(self, resource: str, write: bool = False) -> bool:
        return (Resource(resource), WRITE if write else READ) in self.principal.permissions


class LoginNeeded(Exception):
    """No live console session: the page answers with the login page."""


async def current_session(request: Request) -> tuple[str, ConsoleSession] | None:
    cookie = request.cookies.get(COOKIE, "")
    session = open_session(app_context(request).secrets, cookie)
    return None if session is None else (cookie, session)


async def viewer(request: Request) -> Viewer:
    found = await current_session(request)
    if found is None:
        raise LoginNeeded
    cookie, session = found
    try:
        principal = await session_principal(request, session)
    except ApiError:
        raise LoginNeeded from None
    return Viewer(principal, session, Api(request, cookie, session))


async def logged_in(request: Request) -> Viewer | None:
    """The viewer while the request's session holds, else None."""
    try:
        return await viewer(request)
    except LoginNeeded:
        return None


ViewerDep = Annotated[Viewer, Depends(viewer)]


def render(
    request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "now": utcnow(), **context},
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    return response


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target)}", status_code=303)


class ConsoleRoute(APIRoute):
    """A console page: without a login it sends the browser to the login page; an API refusal
    becomes a page with the API's message (and its status)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginNeeded:
                return login_redirect(request)
            except ApiRefused as refused:
                shown = await logged_in(request)
                return render(
                    request, "error.html", shown, status=refused.status, message=refused.message
                )

        return page
