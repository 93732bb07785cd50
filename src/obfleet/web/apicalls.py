"""The console reads through the API itself, in process, as the logged-in user: one source of
rules, permissions and messages. The browser sends the console's writes to the API directly."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from obfleet.api.sessions import COOKIE, CSRF_HEADER, ConsoleSession

# A name no request from outside carries, for the in-process calls' Host header.
INTERNAL_BASE = "http://obfleet.console"


class ApiRefused(Exception):
    """The API answered an error: its HTTP status and its own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Api:
    """GET requests to the app's own API as the session's user."""

    def __init__(self, request: Request, session_cookie: str, session: ConsoleSession) -> None:
        self._transport = httpx.ASGITransport(
            app=request.app, client=(request.client.host if request.client else "", 0)
        )
        self._cookies = {COOKIE: session_cookie}
        self._headers = {CSRF_HEADER: session.csrf}

    async def get(self, path: str, **params: Any) -> Any:
        """The `data` of the API's answer; ApiRefused with the API's message otherwise."""
        query = {k: v for k, v in params.items() if v not in (None, "")}
        async with httpx.AsyncClient(
            transport=self._transport,
            base_url=INTERNAL_BASE,
            cookies=self._cookies,
            headers=self._headers,
        ) as client:
            answer = await client.get(path, params=query)
        body = answer.json()
        if answer.status_code != 200 or not body.get("successful", False):
            error = body.get("error") or {}
            raise ApiRefused(answer.status_code, str(error.get("message", answer.text)))
        return body.get("data")

    async def contents(self, path: str, **params: Any) -> list[Any]:
        """The items of a listed answer (`data.contents`)."""
        data = await self.get(path, **params)
        return list(data.get("contents", []))
