"""GET /api/v2/obproxy/parameterInfo: OCP types `version` as a String, so every entry has one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from obfleet.obproxy import catalog
from tests.conftest import ADMIN

KEYS = {
    "id",
    "name",
    "version",
    "type",
    "allowedStringValues",
    "maxValue",
    "minValue",
    "defaultValue",
    "needRestart",
    "readonly",
    "description",
    "explanation",
}


def contents(client: TestClient, query: str = "") -> list[dict]:
    r = client.get(f"/api/v2/obproxy/parameterInfo{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["data"]["contents"]


def test_every_entry_has_a_string_version_without_a_version_asked(client: TestClient) -> None:
    entries = contents(client)
    assert len(entries) == len(catalog.catalog())
    for entry in entries:
        assert set(entry) == KEYS
        assert isinstance(entry["version"], str), entry
        catalog.parse_version(entry["version"])  # a real version number


def test_version_is_the_first_release_the_catalog_knows_the_entry_from(
    client: TestClient,
) -> None:
    # In every open-source release: the first one, 3.1.0.
    (entry,) = contents(client, "?name=client_max_connections")
    assert entry["version"] == catalog.FIRST_RELEASE == "3.1.0"
    # Added later: its minVersion.
    (entry,) = contents(client, "?name=rpc_listen_port")
    assert entry["version"] == "4.3.0"
    # Asked for a version: that version, as before.
    (entry,) = contents(client, "?name=client_max_connections&version=4.2.3.0")
    assert entry["version"] == "4.2.3.0"
    # Each entry is available in the version it names.
    for info in catalog.catalog():
        shown = info.to_ocp_dict()
        assert isinstance(shown["version"], str) and info.available_in(shown["version"])
