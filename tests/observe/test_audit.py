"""The audit trail: a row for every change asked of obfleet (API or CLI), whatever its outcome,
naming who, from where, what, which object, the outcome, the trace id and the tasks it
submitted; never a secret. Read by ADMIN and AUDITOR through GET /api/v2/audit-events."""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from obfleet.api.app import create_app
from obfleet.api.schemas.audit import AuditEventOut
from obfleet.config import Settings
from obfleet.services.users import create_user
from obfleet.store.models.audit import AuditEvent
from tests.api.test_cli import run as run_cli
from tests.api.test_ob_clusters import imp
from tests.api.test_packages import upload
from tests.conftest import ADMIN, LOOPBACK, basic
from tests.server import SECRET_KEY
from tests.standin.rpm import build_standin_rpm

EVENTS = "/api/v2/audit-events"
SECRETS = ("Host_secret_pw_1", "Changed_secret_2", "Proxyro_pw_1", "Auditor_Pass_12")


def events(client: TestClient, headers: dict[str, str] = ADMIN, **params: Any) -> list[dict]:
    response = client.get(EVENTS, headers=headers, params={"size": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]["contents"]


def last(client: TestClient) -> dict:
    return events(client, sort="id,desc", size=1)[0]


def raw_trail(client: TestClient) -> str:
    with client.app.state.ctx.db.engine.connect() as conn:  # type: ignore[attr-defined]
        return repr(conn.execute(text("SELECT * FROM audit_event")).all())


def credential(client: TestClient, name: str = "ssh_root", **fields: Any) -> Any:
    body = {"name": name, "targetType": "HOST", "username": "root", "password": SECRETS[0]}
    return client.post("/api/v2/credentials", headers=ADMIN, json={**body, **fields})


def add_hosts(client: TestClient, credential_id: int, *addresses: str) -> Any:
    made = client.post(
        "/api/v2/compute/hosts/batchCreate",
        headers=ADMIN,
        json={
            "hostBasicDataList": [{"innerIpAddress": a} for a in addresses],
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential_id,
        },
    )
    assert made.status_code == 200, made.text
    return made


def test_credential_changes_are_recorded_with_their_outcome_and_no_secret(
    client: TestClient,
) -> None:
    created = credential(client)
    cid = created.json()["data"]["id"]
    client.patch(f"/api/v2/credentials/{cid}", headers=ADMIN, json={"password": SECRETS[1]})
    client.delete(f"/api/v2/credentials/{cid}", headers=ADMIN)
    client.delete(f"/api/v2/credentials/{cid}", headers=ADMIN)  # gone: 404, recorded too
    client.get(f"/api/v2/credentials/{cid}", headers=ADMIN)  # reads are not changes

    gone = client.delete(f"/api/v2/credentials/{cid}", headers=ADMIN).json()["error"]["code"]
    trail = events(client)
    assert [(e["action"], e["status"], e["successful"], e["errorCode"]) for e in trail] == [
        ("create_credential", 200, True, None),
        ("update_credential", 200, True, None),
        ("delete_credential", 200, True, None),
        ("delete_credential", 404, False, gone),
        ("delete_credential", 404, False, gone),
    ]
    first = trail[0]
    assert first == first | {
        "username": "admin",
        "clientAddress": LOOPBACK[0],
        "method": "POST",
        "route": "/api/v2/credentials",
        "objectType": "CREDENTIAL",
        "objectId": str(cid),
        "traceId": created.json()["traceId"],
        "taskIds": [],
    }
    assert {e["objectId"] for e in trail} == {str(cid)}
    assert trail[1]["route"] == "/api/v2/credentials/{credential_id}"
    assert not any(secret in raw_trail(client) for secret in SECRETS)


def test_refused_requests_are_recorded_too(client: TestClient) -> None:
    bad = credential(client, name="")  # 400: nothing created
    assert bad.status_code == 400
    anonymous = client.post("/api/v2/credentials", json={"name": "x"})
    wrong = client.delete("/api/v2/credentials/7", headers=basic("admin", "Wrong_pass_1"))
    assert (anonymous.status_code, wrong.status_code) == (401, 401)

    trail = events(client)
    assert [(e["username"], e["status"], e["successful"]) for e in trail] == [
        ("admin", 400, False),
        (None, 401, False),
        (None, 401, False),
    ]
    assert trail[0]["errorCode"] == bad.json()["error"]["code"]
    assert trail[2]["objectId"] == "7"
    assert "Wrong_pass_1" not in raw_trail(client)


def test_host_changes_link_their_tasks_and_name_the_hosts(client: TestClient) -> None:
    cid = credential(client).json()["data"]["id"]
    made = add_hosts(client, cid, "198.18.0.2", "198.18.0.3")
    task_ids = [t["id"] for t in made.json()["data"]["contents"]]
    record = last(client)
    hosts = client.get("/api/v2/compute/hosts", headers=ADMIN).json()["data"]["contents"]
    host_ids = sorted(h["id"] for h in hosts)
    assert (record["action"], record["objectType"]) == ("batch_create", "HOST")
    assert record["taskIds"] == task_ids
    assert record["objectId"] == ",".join(str(h) for h in host_ids)

    refused = client.post(
        "/api/v2/compute/hosts/batchDelete", headers=ADMIN, json={"hostIdList": host_ids}
    )
    assert refused.status_code == 409, refused.text  # their tasks hold them
    record = last(client)
    assert (record["action"], record["successful"], record["objectId"]) == (
        "batch_delete",
        False,
        ",".join(str(h) for h in host_ids),
    )


def test_cluster_and_obproxy_changes_are_recorded(client: TestClient) -> None:
    imported = imp(client)
    ob_id = imported.json()["data"]["id"]
    record = last(client)
    assert (record["action"], record["objectType"], record["objectId"]) == (
        "import_cluster",
        "CLUSTER",
        str(ob_id),
    )
    created = client.post(
        "/api/v2/obproxy/clusters",
        headers=ADMIN,
        json={
            "name": "pc_audit",
            "workMode": "CONFIG_URL",
            "obLinks": [{"clusterName": "obcluster1", "obClusterId": 10}],
        },
    )
    assert created.status_code == 200, created.text
    record = last(client)
    cluster_id = client.get("/api/v2/obproxy/clusters", headers=ADMIN).json()["data"]["contents"][
        0
    ]["id"]
    assert (record["action"], record["objectType"], record["objectId"]) == (
        "create_cluster",
        "OBPROXY",
        str(cluster_id),
    )
    assert record["taskIds"] == [created.json()["data"]["id"]]
    client.delete(f"/api/v2/ob/clusters/{ob_id}", headers=ADMIN)
    record = last(client)
    assert (record["action"], record["objectType"], record["objectId"]) == (
        "delete_cluster",
        "CLUSTER",
        str(ob_id),
    )
    assert "Proxyro_pw_1" not in raw_trail(client)


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is missing")
def test_package_changes_are_recorded(client: TestClient, tmp_path) -> None:
    uploaded = upload(client, build_standin_rpm(tmp_path, version="4.2.3.0", release="3.el7"))
    package_id = uploaded.json()["data"]["id"]
    client.delete(f"/api/v2/software-packages/{package_id}", headers=ADMIN)
    assert [(e["action"], e["objectType"], e["objectId"]) for e in events(client)] == [
        ("upload_package", "PACKAGE", str(package_id)),
        ("delete_package", "PACKAGE", str(package_id)),
    ]


def test_user_and_access_key_changes_by_the_cli_are_recorded(
    client: TestClient, settings: Settings, database_url: str
) -> None:
    def cli(*args: str) -> int:
        env = {"OBFLEET_SECRET_KEY": SECRET_KEY}
        return run_cli(settings.data_dir, database_url, *args, env=env).returncode

    add = ("user", "add", "bob", "--roles", "AUDITOR", "--password", "Bob_Pass_1234")
    assert cli(*add) == 0
    assert cli("user", "passwd", "bob", "--password", "Bob_Pass_5678") == 0
    assert cli(*add) == 1  # bob exists
    assert cli("accesskey", "create", "bob") == 0

    trail = events(client, headers=basic("bob", "Bob_Pass_5678"))
    assert [(e["action"], e["objectId"], e["successful"]) for e in trail] == [
        ("user add", "bob", True),
        ("user passwd", "bob", True),
        ("user add", "bob", False),
        ("accesskey create", "bob", True),
    ]
    assert {(e["method"], e["route"], e["objectType"]) for e in trail} == {("CLI", "cli", "USER")}
    assert all(e["username"] for e in trail)
    assert not any(p in raw_trail(client) for p in ("Bob_Pass_1234", "Bob_Pass_5678"))


def test_the_trail_is_for_auditors_paged_and_filtered(client: TestClient) -> None:
    with client.app.state.ctx.db.transaction() as session:  # type: ignore[attr-defined]
        create_user(session, "auditor", SECRETS[3], ["AUDITOR"])
        create_user(session, "manager", "Manager_Pass_12", ["CLUSTER_MANAGER"])
    auditor, manager = basic("auditor", SECRETS[3]), basic("manager", "Manager_Pass_12")
    for name in ("one", "two", "three"):
        credential(client, name=name)
    client.post(
        "/api/v2/credentials",
        headers=manager,
        json={"name": "m", "targetType": "HOST", "username": "root", "password": "x"},
    )
    assert client.get(EVENTS, headers=manager).status_code == 403
    assert client.post("/api/v2/credentials", headers=auditor, json={}).status_code == 403

    everything = events(client, auditor)
    assert len(everything) == 5
    page = client.get(EVENTS, headers=auditor, params={"size": 2, "page": 2, "sort": "id,desc"})
    data = page.json()["data"]
    assert data["page"] == {"number": 2, "size": 2, "totalElements": 5, "totalPages": 3}
    assert [e["id"] for e in data["contents"]] == [everything[2]["id"], everything[1]["id"]]
    assert len(events(client, auditor, username="admin")) == 3
    assert [e["username"] for e in events(client, auditor, successful=False)] == ["auditor"]  # 403
    assert len(events(client, auditor, action="create_credential", objectType="CREDENTIAL")) == 5
    assert events(client, auditor, action="delete_credential") == []
    one = everything[0]
    assert [e["id"] for e in events(client, auditor, objectId=one["objectId"])] == [one["id"]]
    assert events(client, auditor, startTime=everything[-1]["time"]) == everything[-1:]
    assert events(client, auditor, endTime=everything[0]["time"]) == []
    naive = client.get(EVENTS, headers=auditor, params={"startTime": "2026-01-01T00:00:00"})
    assert naive.status_code == 400


def test_the_trail_is_read_as_rows_and_shows_the_documented_event(client: TestClient) -> None:
    credential_id = credential(client, name="one").json()["data"]["id"]
    credential(client, name="x" * 200)  # refused: no task, an error code
    add_hosts(client, credential_id, "198.18.9.1", "198.18.9.2")
    loaded: list[int] = []
    listen = (AuditEvent, "load", lambda target, _context: loaded.append(target.id))
    event.listen(*listen)
    try:
        trail = events(client, size=2000)
    finally:
        event.remove(*listen)
    assert loaded == [], "the trail was read as AuditEvent objects"
    assert [e["successful"] for e in trail] == [True, False, True]
    assert trail[1]["errorCode"] is not None and trail[1]["taskIds"] == []
    assert len(trail[2]["taskIds"]) == 2 and all(isinstance(t, int) for t in trail[2]["taskIds"])
    for shown in trail:
        documented = AuditEventOut.model_validate(shown).model_dump(mode="json", by_alias=True)
        assert shown == documented


def test_the_trail_can_be_turned_off(settings: Settings) -> None:
    off = dataclasses.replace(settings, audit_enabled=False)
    with TestClient(create_app(off, run_engine=False), client=LOOPBACK) as client:
        assert credential(client).status_code == 200
        assert events(client) == []


def test_config_server_calls_are_not_users_changes(client: TestClient) -> None:
    """Observers and OBProxies call the open config server; the trail is for users."""
    client.post("/services", params={"Action": "GetObProxyConfig"})
    client.delete("/services", params={"Action": "ObRootServiceInfo", "version": "2"})
    client.post("/api/v2/no/such/route", headers=ADMIN)
    assert events(client) == []
