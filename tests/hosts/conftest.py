"""Host module fixtures: a lab of four real test hosts (three for key logins, one for the password
user) and helpers to record credentials and hosts through the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN
from tests.support.testhosts import HostLab, NetnsHost

HOSTS = "/api/v2/compute/hosts"


@pytest.fixture(scope="module")
def lab(host_lab_factory: Callable[..., HostLab]) -> Iterator[HostLab]:
    lab = host_lab_factory(4)
    yield lab
    lab.close()


@pytest.fixture
def hosts(lab: HostLab) -> list[NetnsHost]:
    """The lab's hosts with any fault of an earlier test undone (links, sshd, host keys)."""
    lab.heal()
    return lab.hosts


def add_credential(client: TestClient, name: str, **fields: Any) -> int:
    body = {"name": name, "targetType": "HOST", **fields}
    r = client.post("/api/v2/credentials", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["id"])


def password_credential(client: TestClient, username: str = "admin", password: str = "Pw_1") -> int:
    return add_credential(
        client, f"pw_{username}", authType="PASSWORD", username=username, password=password
    )


def batch_create(client: TestClient, credential_id: int, *addresses: str, **fields: Any) -> Any:
    """POST batchCreate for `addresses`; returns the response (callers check status)."""
    body = {
        "hostBasicDataList": [{"innerIpAddress": a} for a in addresses],
        "sshPort": 22,
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        "credentialId": credential_id,
        **fields,
    }
    return client.post(f"{HOSTS}/batchCreate", headers=ADMIN, json=body)


def created_tasks(client: TestClient, credential_id: int, *addresses: str) -> list[dict]:
    r = batch_create(client, credential_id, *addresses)
    assert r.status_code == 200, r.text
    tasks: list[dict] = r.json()["data"]["contents"]
    assert len(tasks) == len(addresses)
    return tasks


def list_hosts(client: TestClient, **params: Any) -> dict:
    r = client.get(HOSTS, headers=ADMIN, params=params)
    assert r.status_code == 200, r.text
    data: dict = r.json()["data"]
    return data


def get_host(client: TestClient, host_id: int) -> dict:
    r = client.get(f"{HOSTS}/{host_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    data: dict = r.json()["data"]
    return data
