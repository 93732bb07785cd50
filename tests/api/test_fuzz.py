"""The OpenAPI document fuzzed with schemathesis: no request, however odd, makes obfleet fail.

Every operation is called with generated path, query and body values as the admin. The app runs
without its task engine, so the tasks that requests create are recorded and never run: fuzzing
reaches no host. A 5xx answer, an OCP envelope whose `successful` disagrees with its HTTP
status, or an answer that departs from the schema documented for its status (schemathesis'
response_schema_conformance), fails the test. Found so far: a malformed multipart part header
answered 500 (tests/api/test_packages.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import response_schema_conformance
from starlette.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from tests.conftest import ADMIN

# The document only: building the app touches nothing until it starts.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused")), run_engine=False).openapi()
)


@schema.parametrize()
@settings(
    # The same examples on every run (CI gates on this test); raise OBFLEET_FUZZ_EXAMPLES to
    # search further by hand.
    derandomize=True,
    max_examples=int(os.environ.get("OBFLEET_FUZZ_EXAMPLES", "10")),
    deadline=None,
    database=None,  # no example files left behind
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_makes_the_api_fail(
    case: schemathesis.Case, client: TestClient
) -> None:
    response = client.request(**_httpx_kwargs(case))
    what = f"{case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:300]}"
    assert response.status_code < 500, f"{what}: {response.text[:500]}"
    body = response.json() if _is_json(response) else None
    if isinstance(body, dict) and "successful" in body:
        assert body["successful"] == (response.status_code < 400), f"{what}: {body}"
    # Whatever was answered holds to the schema documented for its status. (The request is
    # read first: schemathesis records it, and a multipart upload is sent as a stream.)
    response.request.read()
    case.validate_response(response, checks=[response_schema_conformance])


def _httpx_kwargs(case: schemathesis.Case) -> dict[str, Any]:
    """The case as keyword arguments of httpx's request(): raw bodies go as `content`,
    multipart values that are not text or bytes as their JSON text (httpx sends only those),
    and no per-request cookies (none are used)."""
    kwargs = case.as_transport_kwargs(headers=ADMIN)
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    if kwargs.get("files"):
        kwargs["files"] = [
            (name, (filename, _sendable(value), *rest))
            for name, (filename, value, *rest) in kwargs["files"]
        ]
    return kwargs


def _sendable(value: Any) -> bytes | str:
    return value if isinstance(value, bytes | str) else json.dumps(value)


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")
