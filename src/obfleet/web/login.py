"""Console login and logout: the password is checked as HTTP Basic's is (same throttle, same
messages); the answer is the session cookie, HttpOnly and SameSite=Lax, Secure over HTTPS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from obfleet.api.auth import password_login
from obfleet.api.deps import app_context
from obfleet.api.sessions import COOKIE, SESSION_SECONDS, new_session
from obfleet.errors import ApiError
from obfleet.web.frame import HOME_PATH, LOGIN_PATH, PREFIX, ConsoleRoute, current_session, render

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
    if await current_session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", None, next=_safe_next(next))


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
    session = new_session(principal.username)
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
    found = await current_session(request)
    answer = RedirectResponse(LOGIN_PATH, status_code=303)
    # Only the page's own form may log the user out (not another site's POST).
    if found is not None and found[1].accepts(csrf):
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return answer
