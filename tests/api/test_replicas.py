"""Several real `obfleet serve` replicas on one PostgreSQL / MariaDB metadb: they start together
on an empty metadb, refuse to start with a secret key other than the metadb's, and serve and
ship packages uploaded through any of them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.packages.payload import load_payload
from obfleet.records import packages
from obfleet.store import package_chunks
from obfleet.store.db import Database
from obfleet.store.key_verifier import SecretKeyMismatch
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.dbfixtures import SERVER_URL, empty_server_database
from tests.server import ServerProcess
from tests.standin.rpm import build_standin_rpm


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def replica(tmp_path: Path, name: str, url: str, **env: str) -> ServerProcess:
    return ServerProcess(
        tmp_path / f"data-{name}",
        database_url=url,
        env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD, **env},
    )


def test_three_replicas_start_at_once_on_an_empty_metadb(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    if not SERVER_URL:
        pytest.skip("replicas share a PostgreSQL or MySQL-compatible metadb")
    with empty_server_database("_start") as url:
        servers.extend(replica(tmp_path, str(n), url) for n in (1, 2, 3))
        for server in servers:
            server.launch()  # all three before any is waited for: they migrate together
        for server in servers:
            server.wait_ready(120)
            r = httpx.get(f"{server.url}/api/v2/obproxy/clusters", headers=ADMIN, timeout=30)
            assert r.status_code == 200 and r.json()["successful"], r.text
        for server in servers:
            server.stop()


def test_a_replica_with_another_secret_key_refuses_to_start(
    database: Database, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """Two replicas each with a key file of its own (none configured): the second refuses to
    start, saying what to set; with the first's key file copied over, it starts."""
    if database.dialect == "sqlite":
        pytest.skip("replicas share a PostgreSQL or MySQL-compatible metadb")
    url = database.engine.url.render_as_string(hide_password=False)
    a = replica(tmp_path, "a", url, OBFLEET_SECRET_KEY="")
    b = replica(tmp_path, "b", url, OBFLEET_SECRET_KEY="")
    servers.extend((a, b))
    a.start()
    with pytest.raises(RuntimeError, match="exited early") as refused:
        b.start()
    assert f"copy their data dir's secret.key to {b.data_dir / 'secret.key'}" in str(refused.value)
    assert "set OBFLEET_SECRET_KEY to the key the other replicas use" in str(refused.value)
    shutil.copyfile(a.data_dir / "secret.key", b.data_dir / "secret.key")
    b.start()


def test_an_app_with_another_secret_key_refuses_to_start(settings: Settings) -> None:
    with TestClient(create_app(settings, run_engine=False)):
        pass  # the first start writes the verifier
    other = dataclasses.replace(settings, secret_key="another-key")
    with (
        pytest.raises(SecretKeyMismatch, match="set OBFLEET_SECRET_KEY"),
        TestClient(create_app(other, run_engine=False)),
    ):
        pass
    with TestClient(create_app(settings, run_engine=False)) as client:
        assert client.get("/api/v2/obproxy/clusters", headers=ADMIN).status_code == 200


@pytest.fixture(scope="module")
def standin_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is missing: run scripts/system-deps.sh")
    return build_standin_rpm(tmp_path_factory.mktemp("rpm"), version="4.2.3.0", release="3.el7")


def test_a_package_uploaded_through_one_replica_is_downloaded_through_another(
    database: Database, tmp_path: Path, servers: list[ServerProcess], standin_rpm: Path
) -> None:
    if database.dialect == "sqlite":
        pytest.skip("replicas share a PostgreSQL or MySQL-compatible metadb")
    url = database.engine.url.render_as_string(hide_password=False)
    a, b = replica(tmp_path, "a", url), replica(tmp_path, "b", url)
    servers.extend((a, b))
    a.start()
    b.start()
    with standin_rpm.open("rb") as f:
        r = httpx.post(
            f"{a.url}/api/v2/software-packages",
            headers=ADMIN,
            files={"file": (standin_rpm.name, f, "application/x-rpm")},
            timeout=60,
        )
    assert r.status_code == 200, r.text
    name = r.json()["data"]["fileName"]
    got = httpx.get(f"{b.url}/api/v2/files/sys-package/{name}", headers=ADMIN, timeout=60)
    assert got.status_code == 200, got.text
    assert got.content == standin_rpm.read_bytes()


def test_a_replica_that_never_saw_the_upload_ships_the_package(
    client: TestClient, settings: Settings, standin_rpm: Path
) -> None:
    """What an install ships is extracted from the metadb's copy on a data dir of its own."""
    with standin_rpm.open("rb") as f:
        r = client.post(
            "/api/v2/software-packages",
            headers=ADMIN,
            files={"file": (standin_rpm.name, f, "application/x-rpm")},
        )
    assert r.status_code == 200, r.text
    other = AppContext.open(dataclasses.replace(settings, data_dir=settings.data_dir.parent / "b"))
    try:
        with other.db.session() as session:
            package = packages.get(session, r.json()["data"]["id"])
        payload = asyncio.run(
            load_payload(
                other.settings.data_dir / "cache" / "packages",
                package.sha1,
                lambda: package_chunks.local_copy(other.db, other.settings.packages_dir, package),
            )
        )
    finally:
        other.close()
    assert payload.files and payload.root.is_relative_to(other.settings.data_dir)
    for f in payload.files:
        assert hashlib.sha256((payload.root / f.path).read_bytes()).hexdigest() == f.sha256
