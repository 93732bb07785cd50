"""Every JSON answer has its shape in /openapi.json: no operation's 200 `data` is a free-form
object, so clients (and the schemathesis fuzz) see what each route really answers; and real
answers hold to the shapes documented for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from tests.conftest import ADMIN
from tests.obproxy.test_clusters import create
from tests.obproxy.test_parameters_api import add_obproxy, create_cluster
from tests.server import free_port

DOC = create_app(Settings(data_dir=Path("unused")), run_engine=False).openapi()
SCHEMAS = DOC["components"]["schemas"]

# Operations whose answer is free-form JSON by the contract, each with why.
FREE_FORM = {
    # ob-configserver's envelope: its Data is the Action's own answer (an OBProxy config, the
    # root service list, a URL template, or null), so no one schema fits.
    ("GET", "/services"),
    ("POST", "/services"),
    ("DELETE", "/services"),
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def free_form(schema: dict[str, Any] | None) -> bool:
    """An object whose properties are not told (or no schema at all); `T | None` is judged by
    its T, a Page or Contents by its items."""
    if not schema:
        return True
    schema = resolve(schema)
    if "anyOf" in schema:
        told = [s for s in schema["anyOf"] if s != {"type": "null"}]
        return not told or any(free_form(s) for s in told)
    if schema.get("type") == "null":
        return False  # an answer without data (Envelope[None])
    if schema.get("type") == "array":
        return free_form(schema.get("items"))
    if schema.get("type", "object") != "object":
        return False
    properties = schema.get("properties")
    if not properties:
        return True
    return "contents" in properties and free_form(properties["contents"])


def json_answers() -> list[tuple[str, str, dict[str, Any] | None]]:
    found = []
    for path, operations in DOC["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"].get("200", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path, content["application/json"].get("schema")))
    return found


def data_of(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The envelope's `data`; a bare answer (OCP's /api/v2/info) is judged whole."""
    whole = resolve(schema or {})
    return whole.get("properties", {}).get("data", schema) if whole else None


def test_every_json_answer_has_a_typed_data_schema():
    loose = [
        f"{method} {path}"
        for method, path, schema in json_answers()
        if (method, path) not in FREE_FORM and free_form(data_of(schema))
    ]
    assert loose == []


def test_the_allow_list_names_only_free_form_answers():
    answers = {(method, path): schema for method, path, schema in json_answers()}
    for key in FREE_FORM:
        assert free_form(resolve(answers[key])["properties"]["Data"]), key


def test_task_answers_are_typed_by_their_form():
    """The OBProxy and host operations answer OCP's TaskInstance (creator a name), the task
    API its WrappedTaskInstance (creator {id, name})."""
    answers = {(method, path): schema for method, path, schema in json_answers()}
    started = {
        ("POST", "/api/v2/obproxy/clusters"),
        ("DELETE", "/api/v2/obproxy/clusters/{cluster_id}"),
        ("DELETE", "/api/v2/obproxy/clusters/{cluster_id}/obproxies/{obproxy_ids}"),
        ("POST", "/api/v2/obproxy/clusters/{cluster_id}/obproxies/{obproxy_ids}/restart"),
        ("POST", "/api/v2/obproxy/clusters/{cluster_id}/obproxies/{obproxy_ids}/upgrade"),
        ("PUT", "/api/v2/obproxy/clusters/{cluster_id}/parameters"),
    }
    started_lists = {
        ("POST", "/api/v2/obproxy/clusters/{cluster_id}/obproxies/batchAdd"),
        ("POST", "/api/v2/obproxy/clusters/{cluster_id}/takeOver"),
        ("POST", "/api/v2/compute/hosts/batchCreate"),
    }
    wrapped = {
        ("GET", "/api/v2/tasks/instances/{taskInstanceId}"),
        ("POST", "/api/v2/tasks/instances/{taskInstanceId}/retry"),
        ("POST", "/api/v2/tasks/instances/{taskInstanceId}/rollback"),
    }

    def task_of(key: tuple[str, str]) -> dict[str, Any]:
        data = resolve(answers[key])["properties"]["data"]
        (told,) = [s for s in data["anyOf"] if s != {"type": "null"}]
        return resolve(told)

    for key in started:
        assert task_of(key)["properties"]["creator"] == {"type": "string", "title": "Creator"}
    for key in started_lists:
        items = task_of(key)["properties"]["contents"]["items"]
        assert resolve(items)["properties"]["creator"]["type"] == "string", key
    for key in wrapped:
        creator = resolve(task_of(key)["properties"]["creator"])
        assert set(creator["properties"]) == {"id", "name"}, key


JSON_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": int | float,
    "boolean": bool,
    "null": type(None),
}


def violations(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Where `value` departs from `schema` (the subset of JSON Schema pydantic writes), keys the
    schema does not name included."""
    schema = resolve(schema)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if value is None or o != {"type": "null"}]
        tries = [violations(value, option, where) for option in options]
        return [] if [] in tries else min(tries, key=len)
    kind = schema.get("type")
    if kind is None:
        return []
    counted = kind in ("integer", "number")
    if not isinstance(value, JSON_TYPES[kind]) or (counted and isinstance(value, bool)):
        return [f"{where}: {value!r} is not {kind}"]
    if kind == "array":
        item = schema.get("items", {})
        return [v for i, x in enumerate(value) for v in violations(x, item, f"{where}[{i}]")]
    if kind != "object":
        return []
    properties = schema.get("properties", {})
    found = [f"{where}.{key}: missing" for key in schema.get("required", []) if key not in value]
    if properties:
        found += [f"{where}.{key}: not in the schema" for key in value if key not in properties]
    values = schema.get("additionalProperties")
    for key, item in value.items():
        told = properties.get(key, values if isinstance(values, dict) else None)
        found += violations(item, told, f"{where}.{key}") if told is not None else []
    return found


def test_real_answers_hold_to_their_documented_schemas(client: TestClient):
    cluster_id = create_cluster(client)
    add_obproxy(client, cluster_id, free_port())  # nothing listens: its parameters are unread
    started = create(client, name="pc2")
    changed = client.put(
        f"/api/v2/obproxy/clusters/{cluster_id}/parameters",
        headers=ADMIN,
        json={"parameters": [{"name": "client_max_connections", "value": "100"}]},
    )
    task_id = started.json()["data"]["id"]
    answers = {
        ("POST", "/api/v2/obproxy/clusters"): started,
        ("PUT", "/api/v2/obproxy/clusters/{cluster_id}/parameters"): changed,
    }
    for path, url in [
        ("/api/v2/obproxy/clusters", "/api/v2/obproxy/clusters"),
        ("/api/v2/obproxy/clusters/{cluster_id}", f"/api/v2/obproxy/clusters/{cluster_id}"),
        (
            "/api/v2/obproxy/clusters/{cluster_id}/parameters",
            f"/api/v2/obproxy/clusters/{cluster_id}/parameters",
        ),
        (
            "/api/v2/obproxy/parameterInfo",
            "/api/v2/obproxy/parameterInfo?name=client_max_connections",
        ),
        ("/api/v2/tasks/instances", "/api/v2/tasks/instances"),
        ("/api/v2/tasks/instances/{taskInstanceId}", f"/api/v2/tasks/instances/{task_id}"),
        ("/api/v2/ob/clusters", "/api/v2/ob/clusters"),
        ("/api/v2/compute/hosts", "/api/v2/compute/hosts"),
        ("/api/v2/info", "/api/v2/info"),
    ]:
        answers["GET", path] = client.get(url, headers=ADMIN)
    documented = {(method, path): schema for method, path, schema in json_answers()}
    for (method, path), response in answers.items():
        assert response.status_code == 200, (method, path, response.text)
        schema = documented[method, path]
        assert schema is not None
        assert violations(response.json(), schema, f"{method} {path}") == []
