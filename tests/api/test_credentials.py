"""The password box: secrets encrypted at rest, masked in every response, never logged."""

from __future__ import annotations

import logging

import asyncssh
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN
from tests.support.sshkeys import KEY_TYPES, PASSPHRASE, make_key

SECRET = "Pr0xyro-Secret-XYZ"


def create(client, **fields):
    body = {"name": "ssh_root", "targetType": "HOST", "username": "root", "password": SECRET}
    body.update(fields)
    return client.post("/api/v2/credentials", headers=ADMIN, json=body)


def raw_rows(client) -> str:
    with client.app.state.ctx.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM credential")).all()
    return repr(rows)


def test_create_masks_and_encrypts(client, caplog):
    caplog.set_level(logging.DEBUG)
    r = create(client)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["secret"] == "***" and data["targetType"] == "HOST"
    assert SECRET not in r.text
    assert SECRET not in raw_rows(client)
    listed = client.get("/api/v2/credentials", headers=ADMIN)
    one = client.get(f"/api/v2/credentials/{data['id']}", headers=ADMIN)
    assert SECRET not in listed.text and SECRET not in one.text
    assert listed.json()["data"]["page"]["totalElements"] == 1
    assert SECRET not in caplog.text


def test_private_key_credential(client):
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    r = create(client, name="ssh_key", authType="PRIVATE_KEY", privateKey=key, password=None)
    assert r.status_code == 200, r.text
    assert "PRIVATE KEY" not in r.text
    assert "PRIVATE KEY" not in raw_rows(client)


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_every_openssh_key_type_with_or_without_passphrase(client, tmp_path, kind, passphrase):
    key = make_key(tmp_path, kind, passphrase)
    r = create(
        client,
        name=f"key_{kind}",
        authType="PRIVATE_KEY",
        privateKey=key.private,
        passphrase=passphrase,
        password=None,
    )
    assert r.status_code == 200, r.text
    if passphrase:
        assert passphrase not in r.text and passphrase not in raw_rows(client)


def test_a_key_with_a_wrong_or_missing_passphrase_is_refused(client, tmp_path):
    key = make_key(tmp_path, "ed25519", PASSPHRASE)
    for passphrase in ("wrong", None):
        r = create(client, authType="PRIVATE_KEY", privateKey=key.private, passphrase=passphrase)
        assert r.status_code == 400 and "privateKey" in r.json()["error"]["message"], r.text
    assert client.get("/api/v2/credentials", headers=ADMIN).json()["data"]["contents"] == []


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"name": "1bad"}, "name"),
        ({"password": None}, "password is required"),
        ({"authType": "PRIVATE_KEY", "privateKey": "not a key", "password": None}, "privateKey"),
        ({"targetType": "OB_CLUSTER", "authType": "PRIVATE_KEY", "privateKey": "x"}, "HOST"),
        ({"username": "root; rm -rf /"}, "username"),
        ({"targetType": "SOMETHING"}, "targetType"),
    ],
)
def test_bad_input_refused_and_nothing_stored(client, fields, words):
    r = create(client, **fields)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]
    assert client.get("/api/v2/credentials", headers=ADMIN).json()["data"]["contents"] == []


def test_duplicate_name_conflict(client):
    assert create(client).status_code == 200
    r = create(client)
    assert r.status_code == 409
    assert (
        client.get("/api/v2/credentials", headers=ADMIN).json()["data"]["page"]["totalElements"]
        == 1
    )


def test_patch_rotates_secret(client):
    cid = create(client).json()["data"]["id"]
    r = client.patch(
        f"/api/v2/credentials/{cid}",
        headers=ADMIN,
        json={"password": "New-secret-99", "description": "rotated"},
    )
    assert r.status_code == 200 and r.json()["data"]["description"] == "rotated"
    from obfleet.records.credentials import reveal

    ctx = client.app.state.ctx
    with ctx.db.session() as session:
        assert reveal(session, ctx.secrets, cid).secret == "New-secret-99"
        assert "New-secret-99" not in repr(reveal(session, ctx.secrets, cid))


def test_delete_refused_while_a_cluster_uses_it(client):
    cid = create(client, name="proxyro", targetType="OB_CLUSTER", username="proxyro").json()[
        "data"
    ]["id"]
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": "ob1",
            "obClusterId": 1,
            "proxyroCredentialId": cid,
            "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
        },
    )
    assert r.status_code == 200, r.text
    r = client.delete(f"/api/v2/credentials/{cid}", headers=ADMIN)
    assert r.status_code == 409 and "ob_cluster" in r.json()["error"]["message"]
    cluster_id = client.get("/api/v2/ob/clusters", headers=ADMIN).json()["data"]["contents"][0][
        "id"
    ]
    assert client.delete(f"/api/v2/ob/clusters/{cluster_id}", headers=ADMIN).status_code == 200
    assert client.delete(f"/api/v2/credentials/{cid}", headers=ADMIN).status_code == 200
    assert client.get(f"/api/v2/credentials/{cid}", headers=ADMIN).status_code == 404


def test_secret_key_file_made_with_mode_0600(tmp_path, database_url):
    from obfleet.appcontext import AppContext
    from obfleet.config import Settings

    ctx = AppContext.open(Settings(data_dir=tmp_path / "d", database_url=database_url))
    key_file = tmp_path / "d" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    token = ctx.secrets.encrypt("abc")
    again = AppContext.open(Settings(data_dir=tmp_path / "d", database_url=database_url))
    assert again.secrets.decrypt(token) == "abc"
    ctx.close()
    again.close()
