"""Several real `obfleet serve` replicas on one PostgreSQL / MariaDB metadb: they start together
on an empty metadb, and refuse to start with a secret key other than the metadb's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
