"""Request bodies are capped before anything reads them, authenticated or not."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from obfleet.api.body_limit import MAX_BODY_BYTES
from tests.conftest import ADMIN

IMPORT = "/api/v2/ob/clusters/import"


def too_big() -> bytes:
    return b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'


def assert_refused(r, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["successful"] is False and body["error"]["code"] == 1119, body
    assert r.headers["x-trace-id"] == body["traceId"]
    listed = client.get("/api/v2/ob/clusters", headers=ADMIN).json()["data"]
    assert listed["page"]["totalElements"] == 0


def test_a_declared_length_over_the_cap_is_refused_before_authentication(
    client: TestClient,
) -> None:
    r = client.post(IMPORT, content=too_big(), headers={"content-type": "application/json"})
    assert_refused(r, client)


def test_a_chunked_body_is_cut_off_once_it_passes_the_cap(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        data = too_big()
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    r = client.post(IMPORT, content=chunks(), headers={**ADMIN, "content-type": "application/json"})
    assert_refused(r, client)


def test_a_body_under_the_cap_goes_through(client: TestClient) -> None:
    r = client.post(IMPORT, json={"name": "x" * 100}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["code"] != 1119, r.text
