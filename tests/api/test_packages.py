"""Software packages: a real RPM uploaded (streamed), parsed, listed, downloaded, deleted."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import ADMIN
from tests.standin.rpm import build_standin_rpm

pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None, reason="rpmbuild is missing: run scripts/system-deps.sh"
)


@pytest.fixture(scope="session")
def rpms(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("rpms")
    return {
        "proxy": build_standin_rpm(out, version="4.2.3.0", release="3.el7"),
        "proxy_new": build_standin_rpm(out, version="4.3.0.0", release="5.el7"),
        "other": build_standin_rpm(out, name="some-tool", version="1.0", release="1.el8"),
    }


def upload(client, path: Path, name: str | None = None):
    with path.open("rb") as f:
        return client.post(
            "/api/v2/software-packages",
            headers=ADMIN,
            files={"file": (name or path.name, f, "application/x-rpm")},
        )


def listed(client) -> list[dict]:
    return client.get("/api/v2/software-packages", headers=ADMIN).json()["data"]["contents"]


def stored_files(client) -> list[str]:
    packages_dir = client.app.state.ctx.settings.packages_dir
    return sorted(p.name for p in packages_dir.rglob("*") if p.is_file())


def test_upload_parses_header(client, rpms):
    path = rpms["proxy"]
    r = upload(client, path, name="renamed-by-browser.rpm")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["name"] == "obproxy-ce"
    assert data["fileName"] == "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm"
    assert (
        data["version"],
        data["buildNumber"],
        data["operatingSystem"],
        data["architecture"],
    ) == ("4.2.3.0", "3", "el7", "x86_64")
    assert data["type"] == "OBPROXY_INSTALL_PACKAGE" and data["extension"] == "rpm"
    assert data["sha1"] == hashlib.sha1(path.read_bytes()).hexdigest()
    assert data["size"] == path.stat().st_size
    assert data["downloadUrl"].endswith("/api/v2/files/sys-package/" + data["fileName"])
    assert stored_files(client) == [data["fileName"]]


def test_download_returns_same_bytes(client, rpms):
    file_name = upload(client, rpms["proxy"]).json()["data"]["fileName"]
    r = client.get(f"/api/v2/files/sys-package/{file_name}", headers=ADMIN)
    assert r.status_code == 200 and r.content == rpms["proxy"].read_bytes()
    assert client.get("/api/v2/files/sys-package/nothing.rpm", headers=ADMIN).status_code == 404


def test_duplicate_refused_7512(client, rpms):
    assert upload(client, rpms["proxy"]).status_code == 200
    r = upload(client, rpms["proxy"])
    assert r.status_code == 409 and r.json()["error"]["code"] == 7512
    assert len(listed(client)) == 1 and len(stored_files(client)) == 1


def test_not_an_rpm_refused_7506(client, tmp_path):
    junk = tmp_path / "obproxy.rpm"
    junk.write_bytes(b"this is not an rpm" * 100)
    r = upload(client, junk)
    assert r.status_code == 400 and r.json()["error"]["code"] == 7506
    assert listed(client) == [] and stored_files(client) == []


def test_unknown_package_type_refused_7513(client, rpms):
    r = upload(client, rpms["other"])
    assert r.status_code == 400 and r.json()["error"]["code"] == 7513
    assert listed(client) == [] and stored_files(client) == []


def test_size_limit(settings, tmp_path):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from obfleet.api.app import create_app

    app = create_app(replace(settings, max_upload_bytes=1024), run_engine=False)
    with TestClient(app) as small:
        big = tmp_path / "big.rpm"
        big.write_bytes(b"\0" * 4096)
        r = upload(small, big)
        assert r.status_code == 413 and r.json()["error"]["code"] == 1119
        assert listed(small) == [] and stored_files(small) == []


def test_not_multipart_refused(client):
    r = client.post("/api/v2/software-packages", headers=ADMIN, json={"file": "x"})
    assert r.status_code == 415
    r = client.post(
        "/api/v2/software-packages",
        headers=ADMIN,
        files={"other": ("a.rpm", b"x", "application/x-rpm")},
    )
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
    assert stored_files(client) == []


def test_list_filters_and_delete(client, rpms):
    a = upload(client, rpms["proxy"]).json()["data"]
    b = upload(client, rpms["proxy_new"]).json()["data"]
    got = client.get("/api/v2/software-packages?version=4.3.0.0", headers=ADMIN).json()
    assert [p["id"] for p in got["data"]["contents"]] == [b["id"]]
    got = client.get(
        "/api/v2/software-packages?keyword=4.2.3&type=OBPROXY_INSTALL_PACKAGE", headers=ADMIN
    ).json()
    assert [p["id"] for p in got["data"]["contents"]] == [a["id"]]
    assert all(p["deletable"] for p in listed(client))
    assert client.delete(f"/api/v2/software-packages/{a['id']}", headers=ADMIN).status_code == 200
    assert [p["id"] for p in listed(client)] == [b["id"]]
    assert stored_files(client) == [b["fileName"]]
    r = client.delete(f"/api/v2/software-packages/{a['id']}", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 7514


def test_package_in_use_refused_7507(client, rpms):
    from obfleet.records.credentials import create as create_credential
    from obfleet.store.models.hosts import Host
    from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer

    package = upload(client, rpms["proxy"]).json()["data"]
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        cred = create_credential(
            session,
            ctx.secrets,
            name="ssh",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret="pw",
        )
        host = Host(name="h1", inner_ip_address="198.18.0.10", credential_id=cred.id)
        cluster = ObproxyCluster(name="pc1")
        session.add_all([host, cluster])
        session.flush()
        session.add(
            ObproxyServer(
                cluster_id=cluster.id,
                host_id=host.id,
                package_id=package["id"],
                ip="198.18.0.10",
                sql_port=2883,
                exporter_port=2884,
            )
        )
    r = client.delete(f"/api/v2/software-packages/{package['id']}", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == 7507
    assert [p["deletable"] for p in listed(client)] == [False]
    assert stored_files(client) == [package["fileName"]]
    # Where it is installed: OCP's installationDataList (the sample's list is empty).
    (shown,) = listed(client)
    (installed,) = shown["installationDataList"]
    assert installed["obproxyClusterId"] == cluster.id and installed["hostId"] == host.id
    assert (installed["ip"], installed["sqlPort"]) == ("198.18.0.10", 2883)


def test_a_malformed_multipart_body_is_refused_and_leaves_nothing(client):
    """Found by tests/api/test_fuzz.py: a byte a part header may not hold answered 500."""
    boundary = "obfleet-test"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.rpm"\r\n'
        "Content-\xf4ype: application/x-rpm\r\n\r\n"
        f"payload\r\n--{boundary}--\r\n"
    ).encode("latin-1")
    r = client.post(
        "/api/v2/software-packages",
        headers={**ADMIN, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert r.status_code == 400 and "malformed" in r.json()["error"]["message"], r.text
    assert stored_files(client) == []
