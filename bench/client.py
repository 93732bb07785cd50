"""A light HTTP/1.1 keep-alive client for the benchmarks, on bare asyncio streams.

httpx spends 1.5-2 ms of its own CPU per request, which on a small machine starves the server
it measures and makes every baseline too low. This client writes prepared request bytes and
reads one Content-Length body per request (all obfleet answers outside the event stream have
one), so it costs a small fraction of what the server spends on even the cheapest request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def raise_for_status(self) -> Reply:
        if not 200 <= self.status < 300:
            raise RuntimeError(f"HTTP {self.status}: {self.body[:500]!r}")
        return self


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request_bytes(
    method: str, target: str, host: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """One request, ready to write; made once per distinct request, not per send."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method not in ("GET", "HEAD"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**24)
        return self

    def prepare(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        return request_bytes(method, target, self.authority, headers or {}, payload)

    async def send(self, prepared: bytes) -> Reply:
        """Send one request and read its answer; a kept-alive connection the server closed
        while idle (uvicorn closes them after 5 s) is opened again, once."""
        fresh = self.reader is None
        if fresh:
            await self.open()
        try:
            return await self._exchange(prepared)
        except (asyncio.IncompleteReadError, ConnectionError):
            if fresh:
                raise
            await self.close()
            await self.open()
            return await self._exchange(prepared)

    async def _exchange(self, prepared: bytes) -> Reply:
        assert self.reader is not None and self.writer is not None
        self.writer.write(prepared)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        closing = False
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                closing = True
        body = await self.reader.readexactly(length) if length else b""
        if closing:
            await self.close()
        return Reply(status, body)

    async def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Reply:
        return await self.send(self.prepare(method, target, headers, body))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None
