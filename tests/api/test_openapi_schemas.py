"""Every JSON answer has its shape in /openapi.json: no operation's 200 `data` is a free-form
object, so clients (and the schemathesis fuzz) see what each route really answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obfleet.api.app import create_app
from obfleet.config import Settings

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
