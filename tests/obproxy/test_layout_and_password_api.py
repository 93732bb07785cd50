"""The install layout and root@proxysys fields of a cluster create (extensions), checked with
nothing stored when bad; a generated password revealed once; the cluster's credential refuses
direct edits; changePassword refused with nothing stored when it cannot run; migration 0009
keeps existing clusters as they were installed (/home/admin, root)."""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, column, insert, select, table

from obfleet.obproxy import layout
from obfleet.services.users import create_user
from obfleet.store.db import Database
from obfleet.store.migrate import upgrade
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import ObproxyCluster
from obfleet.timefmt import utcnow
from tests.conftest import ADMIN, basic, wait_task
from tests.dbfixtures import migrated_to
from tests.obproxy.test_clusters import clusters, create, import_ob
from tests.obproxy.test_parameters_api import add_obproxy

GIVEN_PASSWORD = "GIven_pw.12"


def created(client, **fields) -> dict:
    r = create(client, **fields)
    assert r.status_code == 200, r.text
    assert wait_task(client, r.json()["data"]["id"])["status"] == "SUCCESSFUL"
    (cluster,) = [c for c in clusters(client) if c["name"] == fields.get("name", "pc1")]
    return cluster


def credential_rows(client) -> list[str]:
    with client.app.state.ctx.db.session() as session:
        return list(session.scalars(select(Credential.name).order_by(Credential.id)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"installPath": "home/admin"}, "installPath: path must be absolute"),
        ({"installPath": "/home/../etc"}, "must not contain empty, '.' or '..'"),
        ({"installPath": "/home/admin/"}, "without a trailing '/'"),
        ({"installPath": "/home/a b"}, "characters outside"),
        ({"installPath": "/home/x;rm -rf /"}, "characters outside"),
        ({"installPath": "/"}, "is a system directory"),
        ({"installPath": "/etc/obproxy"}, "is a system directory"),
        ({"installPath": "/usr/bin"}, "is a system directory"),
        ({"installPath": "/var/log/obproxy"}, "is a system directory"),
        ({"installPath": "/tmp/obproxy"}, "is a system directory"),
        ({"installPath": "/" + "a" * 210}, "longer than 200"),
        ({"runUser": "Admin"}, "runUser: 'Admin' is not a user name"),
        ({"runUser": "-admin"}, "is not a user name"),
        ({"runUser": "ad min"}, "is not a user name"),
    ],
)
def test_a_bad_install_layout_is_refused_with_nothing_stored(client, fields, message):
    import_ob(client)
    r = create(client, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003 and message in r.json()["error"]["message"]
    assert clusters(client) == [] and credential_rows(client) == ["proxyro_hooray"]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Sh0rt.x", "it has 7 characters, not 8 to 32"),
        ("nouppercase12.._", "it has 0 upper-case letters, not at least 2"),
        ("Has'Quote12.._AB", "it has characters other than letters, digits and the specials"),
        ("Has,Comma12.._AB", "it has characters other than letters, digits and the specials"),
    ],
)
def test_a_proxysys_password_against_the_rule_is_refused(client, password, problem):
    import_ob(client)
    r = create(client, proxysysPassword=password)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 3009 and f"proxysysPassword: {problem}" in error["message"]
    assert password not in r.text
    assert clusters(client) == []


def test_layout_is_shown_and_defaults_to_the_rpms_own(engine_client):
    client = engine_client
    import_ob(client)
    default = created(client)
    assert (default["installPath"], default["runUser"]) == ("/home/admin", "admin")
    other = created(client, name="pc2", installPath="/data/obproxy", runUser="obproxy_1")
    assert (other["installPath"], other["runUser"]) == ("/data/obproxy", "obproxy_1")
    assert layout.home(other["installPath"], "4.2.3.0") == "/data/obproxy/obproxy-4.2.3.0"


def test_a_generated_password_is_revealed_once_to_a_credential_writer(engine_client):
    client = engine_client
    import_ob(client)
    cluster = created(client)
    with client.app.state.ctx.db.transaction() as session:
        create_user(session, "viewer", "VIewer_pw.12", ["OBPROXY_VIEWER"])
    path = f"/api/v2/credentials/{cluster['proxysysCredentialId']}/reveal"
    refused = client.post(path, headers=basic("viewer", "VIewer_pw.12"))
    assert refused.status_code == 403, refused.text
    r = client.post(path, headers=ADMIN)
    assert r.status_code == 200, r.text
    shown = r.json()["data"]
    assert shown["name"] == "proxysys_pc1" and shown["username"] == "root@proxysys"
    with client.app.state.ctx.db.session() as session:
        row = session.get(Credential, cluster["proxysysCredentialId"])
        assert row is not None
        assert client.app.state.ctx.secrets.decrypt(row.secret_encrypted) == shown["password"]
    again = client.post(path, headers=ADMIN)
    assert again.status_code == 409 and "only once" in again.json()["error"]["message"]
    assert shown["password"] not in again.text


def test_a_given_password_is_used_and_never_revealed(engine_client):
    client = engine_client
    import_ob(client)
    cluster = created(client, proxysysPassword=GIVEN_PASSWORD)
    credential_id = cluster["proxysysCredentialId"]
    with client.app.state.ctx.db.session() as session:
        row = session.get(Credential, credential_id)
        assert row is not None
        assert client.app.state.ctx.secrets.decrypt(row.secret_encrypted) == GIVEN_PASSWORD
    r = client.post(f"/api/v2/credentials/{credential_id}/reveal", headers=ADMIN)
    assert r.status_code == 409 and GIVEN_PASSWORD not in r.text


@pytest.mark.parametrize("edit", [{"password": "OTher_pw.34"}, {"username": "root"}])
def test_the_clusters_credential_refuses_direct_edits_and_names_the_task(engine_client, edit):
    client = engine_client
    import_ob(client)
    cluster = created(client, proxysysPassword=GIVEN_PASSWORD)
    credential_id = cluster["proxysysCredentialId"]
    r = client.patch(f"/api/v2/credentials/{credential_id}", headers=ADMIN, json=edit)
    assert r.status_code == 409, r.text
    message = r.json()["error"]["message"]
    assert '"Change obproxy password" task' in message
    assert f"/api/v2/obproxy/clusters/{cluster['id']}/changePassword" in message
    with client.app.state.ctx.db.session() as session:
        row = session.get(Credential, credential_id)
        assert row is not None and row.username == "root@proxysys"
        assert client.app.state.ctx.secrets.decrypt(row.secret_encrypted) == GIVEN_PASSWORD
    described = client.patch(
        f"/api/v2/credentials/{credential_id}", headers=ADMIN, json={"description": "ours"}
    )
    assert described.status_code == 200, described.text


def test_change_password_is_refused_with_nothing_stored_when_it_cannot_run(engine_client):
    client = engine_client
    import_ob(client)
    cluster = created(client, proxysysPassword=GIVEN_PASSWORD)
    path = f"/api/v2/obproxy/clusters/{cluster['id']}/changePassword"
    weak = client.post(path, headers=ADMIN, json={"password": "weak"})
    assert weak.status_code == 400 and weak.json()["error"]["code"] == 3009
    add_obproxy(client, cluster["id"], 2883, status="RESTARTING")
    busy = client.post(path, headers=ADMIN, json={"password": "OTher_pw.34"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == 21003
    unknown = client.post(
        "/api/v2/obproxy/clusters/999999/changePassword", headers=ADMIN, json={"password": "x"}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 21001
    assert "proxysys_pc1_next" not in credential_rows(client)


def test_a_cluster_without_obproxies_changes_its_password_at_once(engine_client):
    client = engine_client
    import_ob(client)
    cluster = created(client, proxysysPassword=GIVEN_PASSWORD)
    r = client.post(
        f"/api/v2/obproxy/clusters/{cluster['id']}/changePassword",
        headers=ADMIN,
        json={"password": "OTher_pw.34"},
    )
    assert r.status_code == 200, r.text
    task = wait_task(client, r.json()["data"]["id"])
    assert task["name"] == "Change obproxy password" and task["status"] == "SUCCESSFUL"
    with client.app.state.ctx.db.session() as session:
        row = session.get(Credential, cluster["proxysysCredentialId"])
        assert row is not None
        assert client.app.state.ctx.secrets.decrypt(row.secret_encrypted) == "OTher_pw.34"
    assert credential_rows(client) == ["proxyro_hooray", "proxysys_pc1"]


@pytest.fixture
def metadb_0008(database_url: str) -> Database:
    """An empty metadb migrated to 0008 only."""
    return migrated_to(database_url, "0008")


OLD_CREDENTIAL = table(
    "credential",
    *(column(name) for name in ("id", "name", "target_type", "auth_type", "username")),
    *(column(name) for name in ("secret_encrypted", "create_time", "update_time")),
)
OLD_CLUSTER = table(  # obproxy_cluster as 0008 has it: its JSON columns typed as JSON
    "obproxy_cluster",
    *(column(name) for name in ("id", "name", "work_mode", "parameter_version")),
    column("startup_parameters", JSON),
    column("parameters", JSON),
    *(column(name) for name in ("proxysys_credential_id", "create_time", "update_time")),
)


def test_existing_clusters_keep_their_layout_and_run_as_root(metadb_0008: Database):
    db = metadb_0008
    with db.engine.begin() as conn:
        conn.execute(
            insert(OLD_CREDENTIAL).values(
                id=1,
                name="proxysys_old",
                target_type="OBPROXY",
                auth_type="PASSWORD",
                username="root@proxysys",
                secret_encrypted="x",
                create_time=utcnow(),
                update_time=utcnow(),
            )
        )
        conn.execute(
            insert(OLD_CLUSTER).values(
                id=1,
                name="old",
                work_mode="RS_LIST",
                parameter_version=1,
                startup_parameters=[],
                parameters=[],
                proxysys_credential_id=1,
                create_time=utcnow(),
                update_time=utcnow(),
            )
        )
    upgrade(db)
    with db.session() as session:
        cluster = session.get(ObproxyCluster, 1)
        credential = session.get(Credential, 1)
        assert cluster is not None and credential is not None
        assert (cluster.install_path, cluster.run_user) == ("/home/admin", "root")
        assert credential.revealable is False
    db.engine.dispose()
