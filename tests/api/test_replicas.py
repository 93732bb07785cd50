"""Several real `obfleet serve` replicas on one PostgreSQL / MariaDB metadb: they start together
on an empty metadb, and refuse to start with a secret key other than the metadb's."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.store.db import Database
from obfleet.store.key_verifier import SecretKeyMismatch
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.dbfixtures import SERVER_URL, empty_server_database
from tests.server import ServerProcess


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
