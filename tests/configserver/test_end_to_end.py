"""End to end: a real `obfleet serve` on 127.0.0.1 and the stand-in OBProxy in CONFIG_URL mode,
started with the configUrl of an OBProxy cluster, reading its root servers from obfleet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from obfleet.configserver import config_url
from obfleet.store.db import Database
from tests.configserver.helpers import servers, set_links
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.server import ServerProcess
from tests.standin.obproxy import REFRESH_ENV
from tests.standin.rpm import build_standin_rpm
from tests.test_standin import (
    HOME_IN_RPM,
    Deployed,
    config_value,
    extract_payload,
    free_port,
    sha1hex,
    wait_for,
)


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Deployed]:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    extract_payload(build_standin_rpm(tmp_path / "rpm"), tmp_path / "root")
    deployed = Deployed(tmp_path / "root" / HOME_IN_RPM)
    try:
        yield deployed
    finally:
        deployed.cleanup()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", database_url=database_url)
    process.env["OBFLEET_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    process.env["OBFLEET_ADVERTISE_URL"] = process.url
    with process:
        yield process


def import_cluster(api: httpx.Client, name: str, ob_cluster_id: int, *ips: str) -> None:
    body = {
        "name": name,
        "obClusterId": ob_cluster_id,
        "type": "PRIMARY",
        "rootServers": servers(*((ip, 2881) for ip in ips)),
        "proxyroPassword": "Proxyro_pw_1",
    }
    r = api.post("/api/v2/ob/clusters/import", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text


def test_standin_obproxy_reads_its_clusters_from_obfleet(
    server: ServerProcess, standin: Deployed, database_url: str
) -> None:
    # Straight to 127.0.0.1, whatever http_proxy the runner has.
    api = httpx.Client(base_url=server.url, trust_env=False, timeout=10)
    import_cluster(api, "ob_linked", 1, "127.0.0.1", "127.0.0.2")
    import_cluster(api, "ob_other", 2, "127.1.0.1")
    db = Database(database_url)
    try:
        set_links(db, "proxy_e2e", "ob_linked")

        sql_port = free_port()
        url = config_url(server.url, "proxy_e2e")
        standin.start(
            "-p",
            str(sql_port),
            "-l",
            str(free_port()),
            "-n",
            "proxy_e2e",
            "-o",
            f"obproxy_config_server_url='{url}',obproxy_sys_password={sha1hex('secret')}",
            env={REFRESH_ENV: "0.2"},
        )

        def rslist() -> str:
            return config_value(sql_port, "config_server_rslist")

        # Fetched before the start command returned: only the linked cluster.
        assert rslist() == "ob_linked:127.0.0.1:2881;127.0.0.2:2881"
        version = api.get(url + "&VersionOnly=true").json()["Data"]["Version"]
        assert config_value(sql_port, "config_server_version") == version

        # An anonymous registration of ob_linked, recorded through the API, is refused...
        registration = {
            "ObCluster": "ob_linked",
            "ObClusterId": 1,
            "Type": "PRIMARY",
            "RsList": [{"address": "127.0.0.3:2882", "role": "LEADER", "sql_port": 3881}],
        }
        rs_url = "/services?Action=ObRootServiceInfo&ObCluster=ob_linked&version=2"
        assert api.post(rs_url, json=registration).json()["Code"] == 403
        assert api.delete(rs_url + "&ObClusterId=1").json()["Code"] == 403

        # ...so when a new link shows up, ob_linked still has the record's servers.
        set_links(db, "proxy_e2e", "ob_linked", "ob_other")
        both = "ob_linked:127.0.0.1:2881;127.0.0.2:2881|ob_other:127.1.0.1:2881"
        wait_for(lambda: rslist() == both, what="the new link")
        standin.stop()
    finally:
        api.close()
        db.dispose()
