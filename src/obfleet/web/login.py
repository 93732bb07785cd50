"""Console login and logout: the password is checked as HTTP Basic's is (same throttle, same
messages); the answer is the session cookie, HttpOnly and SameSite=Lax, Secure over HTTPS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from obfleet.api.auth import password_login
from obfleet.api.deps import app_context
from obfleet.api.sessions import COOKIE, SESSION_SECONDS, ConsoleSession, new_session
from obfleet.errors import ApiError
from obfleet.services.users import end_console_sessions
from obfleet.store.db import Database
from obfleet.web.frame import (
    HOME_PATH,
    LOGIN_PATH,
    PREFIX,
    ConsoleRoute,
    current_session,
    logged_in,
    render,
)
from obfleet.web.messages import text

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Where to go after login: a console page, never another site ("//evil", "/\\evil")."""
    if target and target.startswith(f"{PREFIX}/") and "//" not in target and "\\" not in target:
        return target
    return HOME_PATH


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def console_home() -> RedirectResponse:
    return RedirectResponse(HOME_PATH, status_code=303)


@router.get(LOGIN_PATH)
async def login_page(request: Request, next: str | None = None) -> Response:
    # Only a session that still holds leads on (an ended one would be sent back here).
    if await logged_in(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    if not request.cookies.get(COOKIE):
        return render(request, "login.html", None, next=_safe_next(next))
    # A cookie that no longer holds (expired, logged out): said so, and dropped.
    page = render(request, "login.html", None, next=_safe_next(next), message=text("login.expired"))
    page.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return page


@router.post(LOGIN_PATH)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    try:
        principal = await password_login(request, username, password)
    except ApiError as exc:
        return render(
            request,
            "login.html",
            None,
            status=exc.http_status,
            next=_safe_next(next),
            message=exc.message,
            username=username,
        )
    session = new_session(principal.username, principal.user_id, principal.session_epoch)
    answer = RedirectResponse(_safe_next(next), status_code=303)
    answer.set_cookie(
        COOKIE,
        session.seal(app_context(request).secrets),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return answer


@router.post(f"{PREFIX}/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session on the server (a copy of the cookie is refused from now on: the user's
    session epoch moved on, which ends the user's other console sessions too), then in the
    browser."""
    found = await current_session(request)
    answer = RedirectResponse(LOGIN_PATH, status_code=303)
    # Only the page's own form may log the user out (not another site's POST).
    if found is not None and found[1].accepts(csrf):
        await run_in_threadpool(_end, app_context(request).db, found[1])
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return answer


def _end(db: Database, session: ConsoleSession) -> None:
    with db.transaction() as s:
        end_console_sessions(s, session.user_id, session.epoch)
