"""The OpenAPI document as a client needs it: who may call each operation (HTTP Basic or an
AK/SK signature, or nobody needed), the OCP error envelope for every status an operation can
answer with, and an example for every value a user fills in.

FastAPI's document is taken and completed: its 422 `{"detail": ...}` goes (obfleet answers a
bad request with 400 and the OCP envelope, api/app.py), request examples are spread from each
request model's own example onto its fields, and parameters get theirs from PARAMETER_EXAMPLES.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from obfleet.api.auth import Public, Requires
from obfleet.errors import ErrorCode
from obfleet.security import aksk

Schema = dict[str, Any]

BASIC, SIGNED = "basicAuth", "akSkSignature"
SECURITY_SCHEMES: Schema = {
    BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "A user's name and password (OCP 3.x style). Users are made with "
        "`obfleet user add`; admin's first password is shown when obfleet first starts.",
    },
    SIGNED: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": f"OCP 4.2's AK/SK signature: `{aksk.SCHEME} <AccessKey ID>:<signature>`, "
        "the signature an HMAC-SHA1 (base64) with the AccessKey Secret of the method, "
        "Content-MD5, Content-Type, Date, Host, the x-ocp-* headers and the path with its "
        "sorted query, joined by newlines; the Date header within 15 minutes of the server's "
        "clock. Keys are made with `obfleet accesskey create`.",
    },
}
NEEDS_LOGIN: list[dict[str, list[str]]] = [{BASIC: []}, {SIGNED: []}]

# An example for each parameter, by its name on the wire.
PARAMETER_EXAMPLES: dict[str, Any] = {
    "page": 1,
    "username": "admin",
    "action": "create_credential",
    "objectType": "HOST",
    "objectId": "1",
    "successful": True,
    "startTime": "2021-09-03T15:05:01.101+08:00",
    "endTime": "2021-09-04T15:05:01.101+08:00",
    "regionName": "HANGZHOU",
    "idcName": "hz1",
    "all": True,
    "mode": "merge",
    "size": 10,
    "sort": "id,desc",
    "name": "obcluster",
    "keyword": "obproxy",
    "status": "RUNNING",
    "type": "OBPROXY",
    "version": "4.2.3.0",
    "operatingSystem": "el7",
    "architecture": "x86_64",
    "targetType": "HOST",
    "withStandby": True,
    "includedServiceType": "OBPROXY",
    "excludedServiceType": "OB",
    "includeUnavailableComponent": True,
    "clusterId": 1,
    "cluterName": "obcluster",
    "clusterName": "obcluster",
    "tenantId": 1002,
    "tenantName": "sys",
    "hostId": 1,
    "cluster_id": 1,
    "credential_id": 1,
    "host_id": 1,
    "package_id": 1,
    "obproxy_ids": "1,2",
    "ob_cluster_name": "obcluster",
    "file_name": "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm",
    "taskInstanceId": 10001,
    "subtaskInstanceId": 20001,
}

# The statuses every operation may answer with an error, and those that depend on what it is.
ALWAYS = (500, 503)
LOGIN = (401, 403, 429)
WRITES = ("post", "put", "patch", "delete")


class ErrorDetail(BaseModel):
    code: int
    message: str


class ErrorEnvelope(BaseModel):
    """OCP's answer to a failed request: `successful` false, `error` says what and why."""

    duration: int
    error: ErrorDetail
    server: str
    status: int
    successful: bool
    timestamp: str
    traceId: str


def document_api(app: FastAPI) -> None:
    """Make `app` serve the completed document at /openapi.json (built once, when asked)."""

    def openapi() -> Schema:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, _generated(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _generated(app: FastAPI) -> Schema:
    return get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )


def complete(app: FastAPI, doc: Schema) -> Schema:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_error_schemas())
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    logins = _login_rules(app)
    for path, method, operation in _operations(doc):
        if (method, path) not in logins:
            continue  # an operation documented by hand (the config server's own envelope)
        needs_login = logins[method, path]
        operation["security"] = NEEDS_LOGIN if needs_login else []
        _document_errors(operation, method, needs_login)
        for parameter in operation.get("parameters", []):
            example = PARAMETER_EXAMPLES.get(parameter["name"])
            if example is not None:
                parameter.setdefault("example", example)
        _example_body(operation, schemas)
    return doc


def _error_schemas() -> dict[str, Schema]:
    found = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = found.pop("$defs", {})
    return {"ErrorEnvelope": found, **defs}


def _operations(doc: Schema) -> Iterator[tuple[str, str, Schema]]:
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            yield path, method, operation


def _login_rules(app: FastAPI) -> dict[tuple[str, str], bool]:
    """(method, path) -> whether the operation needs a login, by its route's rule."""
    rules = {}
    for route in iter_route_contexts(app.routes):  # routes as included, prefixes applied
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        calls = [d.call for d in _dependencies(route.dependant)]
        if any(isinstance(c, Requires) for c in calls):
            needs_login = True
        elif any(isinstance(c, Public) for c in calls):
            needs_login = False
        else:
            continue
        for method in route.methods or ():
            rules[method.lower(), str(route.path_format)] = needs_login
    return rules


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _document_errors(operation: Schema, method: str, needs_login: bool) -> None:
    responses = operation["responses"]
    responses.pop("422", None)
    statuses = [*ALWAYS, *(LOGIN if needs_login else ())]
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append(400)
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        statuses.append(404)
    if method in WRITES:
        statuses += [409, 507]
    for status in sorted(statuses):
        responses.setdefault(
            str(status),
            {
                "description": _codes_of(status),
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
                },
            },
        )


def _codes_of(status: int) -> str:
    codes = [c for c in ErrorCode if c.http_status == status]
    listed = "".join(f"\n- `{c.code}`: {c.template.format(*['…'] * 3)}" for c in codes)
    return f"OCP's error envelope, its `error.code` one of:{listed}"


def _example_body(operation: Schema, schemas: dict[str, Schema]) -> None:
    """The body's example from its model (or its Body()), shown by Swagger's "Try it out", and
    spread onto every field of the model and of the models inside it."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return
    schema = content["schema"]
    options = [schema, *schema.get("anyOf", [])]  # an optional body: `Model | None`
    examples = next((e for o in options if (e := _resolve(o, schemas).get("examples"))), None)
    if examples:
        content.setdefault("example", copy.deepcopy(examples[0]))
        _fill(schema, examples[0], schemas)


def _fill(schema: Schema, value: Any, schemas: dict[str, Schema]) -> None:
    """Give every field inside `schema` its part of `value` as its example."""
    for option in schema.get("anyOf", [schema]):
        option = _resolve(option, schemas)
        if option.get("type") == "array" and isinstance(value, list):
            for item in value:  # each item may show fields the others leave out
                _fill(option.get("items", {}), item, schemas)
        elif isinstance(value, dict):
            for name, part in value.items():
                field = option.get("properties", {}).get(name)
                if field is not None:
                    field.setdefault("examples", [part])
                    _fill(field, part, schemas)


def _resolve(schema: Schema, schemas: dict[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema
