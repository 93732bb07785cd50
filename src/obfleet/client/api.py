"""obfleet's public HTTP API as the client sees it: OCP envelopes unwrapped, errors raised with
their OCP code, pages walked, a task's event stream read, a package uploaded in chunks."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from obfleet.client.profiles import Profile
from obfleet.client.signing import BODY_MD5, AccessKeyAuth

PAGE_SIZE = 2000  # OCP's largest page
CHUNK = 256 * 1024


class ApiFailure(Exception):
    """A request obfleet refused or could not answer: its HTTP status, OCP code and message."""

    def __init__(self, status: int, code: int | str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        code = f" {self.code}" if self.code is not None else ""
        return f"{self.message} (HTTP {self.status}{code})"


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a task's stream."""

    name: str
    data: Any


def _auth(profile: Profile) -> httpx.Auth:
    if profile.uses_access_key:
        return AccessKeyAuth(profile.access_key_id, profile.access_key_secret)
    return httpx.BasicAuth(profile.user, profile.password)


def _failure(response: httpx.Response) -> ApiFailure:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return ApiFailure(response.status_code, None, response.text[:500] or response.reason_phrase)
    return ApiFailure(response.status_code, error.get("code"), error.get("message", ""))


class Api:
    def __init__(self, profile: Profile, timeout: float = 60) -> None:
        self.url = profile.url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, auth=_auth(profile), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The `data` of the answer's envelope; ApiFailure when it is not successful."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiFailure(0, None, f"cannot reach {self.url}: {exc}") from exc
        return _data(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=_present(params))

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def every(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paged list, page after page."""
        items: list[Any] = []
        number = 1
        while True:
            data = self.get(path, page=number, size=PAGE_SIZE, **params)
            items.extend(data["contents"])
            if number >= data["page"]["totalPages"]:
                return items
            number += 1

    def events(self, task_id: int) -> Iterator[Event]:
        """The task's event stream, event by event, until the server ends it."""
        path = f"/api/v2/tasks/instances/{task_id}/events"
        with self.http.stream("GET", path, timeout=httpx.Timeout(60, read=None)) as response:
            if response.status_code != 200:
                response.read()
                raise _failure(response)
            yield from parse_events(response.iter_lines())

    def upload(self, path: str, file: Path, progress: Callable[[int], None]) -> Any:
        """POST `file` as multipart field 'file', streamed; `progress` gets each chunk's size."""
        body = MultipartFile(file, progress)
        md5 = body.md5()  # for an access key's signature: one read before the upload
        headers = {"Content-Type": f"multipart/form-data; boundary={body.boundary}"}
        request = self.http.build_request(
            "POST",
            path,
            content=body,
            headers={**headers, "Content-Length": str(body.size())},
            extensions={BODY_MD5: md5},
        )
        try:
            response = self.http.send(request)
        except httpx.TransportError as exc:
            raise ApiFailure(0, None, f"cannot reach {self.url}: {exc}") from exc
        return _data(response)


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _data(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise _failure(response)
    envelope = response.json()
    if not envelope.get("successful", True):
        raise _failure(response)
    return envelope.get("data")


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a stream's lines; comments (keepalives) skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


class MultipartFile:
    """A multipart/form-data body holding one file, read from disk chunk by chunk each time it
    is iterated (once for the signature's MD5, once to send)."""

    def __init__(self, file: Path, progress: Callable[[int], None]) -> None:
        self.file = file
        self.progress = progress
        self.boundary = secrets.token_hex(16)
        name = json.dumps(file.name)  # a quoted filename, as browsers send it
        self.head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f"filename={name}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    def size(self) -> int:
        return len(self.head) + self.file.stat().st_size + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        with self.file.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
        yield self.tail

    def md5(self) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest().upper()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks():
            self.progress(len(chunk))
            yield chunk
