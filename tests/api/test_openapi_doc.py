"""The OpenAPI document tells a client what it needs: every operation says what it does and
who may call it (HTTP Basic or an AK/SK signature, or anyone), documents the OCP error
envelope for its error statuses (never FastAPI's 422, which obfleet does not answer), and
gives a real example for every value a user fills in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.api.test_openapi_schemas import DOC, SCHEMAS, resolve

# The config server speaks ob-configserver's protocol and documents its own answers.
CONFIG_SERVER = "/services"
PUBLIC = {
    ("get", "/api/v2/time"),
    ("get", "/api/v2/info"),
    ("get", "/api/v2/status"),
}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in DOC["paths"].items():
        for method, operation in ops.items():
            if path != CONFIG_SERVER:
                yield method, path, operation


def test_the_security_schemes_are_basic_and_the_aksk_signature():
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    signed = schemes["akSkSignature"]
    assert (signed["type"], signed["in"], signed["name"]) == ("apiKey", "header", "Authorization")
    assert "OCP-ACCESS-KEY-HMACSHA1" in signed["description"]


def test_every_operation_says_what_it_does_and_who_may_call_it():
    for method, path, operation in operations():
        where = f"{method.upper()} {path}"
        assert operation.get("summary") and len(operation.get("description", "")) > 40, where
        expected = [] if (method, path) in PUBLIC else [{"basicAuth": []}, {"akSkSignature": []}]
        assert operation.get("security") == expected, where


def test_no_422_and_the_ocp_envelope_for_every_error_status():
    assert "HTTPValidationError" not in SCHEMAS and "ValidationError" not in SCHEMAS
    envelope = SCHEMAS["ErrorEnvelope"]
    assert set(envelope["required"]) == {
        "duration",
        "error",
        "server",
        "status",
        "successful",
        "timestamp",
        "traceId",
    }
    for method, path, operation in operations():
        responses = operation["responses"]
        errors = {s for s in responses if s >= "400"}
        assert "422" not in responses, f"{method} {path}"
        needs_login = (method, path) not in PUBLIC
        assert {"500", "503"} <= errors and (not needs_login or {"401", "403"} <= errors)
        if "{" in path:
            assert "404" in errors, f"{method} {path}"
        for status in errors:
            answer = responses[status]
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, status)
            assert "`error.code` one of" in answer["description"]
    created = DOC["paths"]["/api/v2/credentials"]["post"]["responses"]
    assert "1003" in created["400"]["description"] and "3100" in created["403"]["description"]


def properties_of(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field inside a request body's schema, nested models and list items included."""
    for option in schema.get("anyOf", [schema]):
        option = resolve(option)
        if option.get("type") == "array":
            yield from properties_of(option.get("items", {}))
        for name, field in option.get("properties", {}).items():
            yield name, field
            yield from properties_of(field)


def test_every_value_a_user_fills_in_has_an_example():
    missing = []
    for method, path, operation in operations():
        where = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            if "example" not in parameter and "examples" not in parameter:
                missing.append(f"{where} parameter {parameter['name']}")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        if "example" not in body:
            missing.append(f"{where} body")
        missing += [
            f"{where} field {name}"
            for name, field in properties_of(body["schema"])
            if not field.get("examples")
        ]
    assert missing == []


def test_the_create_example_is_a_real_body():
    body = DOC["paths"]["/api/v2/obproxy/clusters"]["post"]["requestBody"]["content"]
    example = body["application/json"]["example"]
    assert example["obproxyInstallParam"]["sqlPort"] == 2883
    assert example["obLinks"] == [
        {"clusterName": "obcluster", "obClusterId": 1, "username": "proxyro"}
    ]


def test_choices_are_enums():
    create = SCHEMAS["ClusterCreateIn"]["properties"]
    assert create["workMode"]["enum"] == ["CONFIG_URL", "RS_LIST"]
    kind = SCHEMAS["BatchCreateIn"]["properties"]["kind"]
    assert kind["enum"] == ["DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER"]
