"""The API through a real `obfleet serve` process over HTTP."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.server import ServerProcess


def test_first_start_prints_generated_admin_password_once(tmp_path, database_url):
    server = ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_ADMIN_PASSWORD": ""}
    )
    with server:
        found = re.findall(r"user 'admin' with password: (\S+)", server.output())
        assert len(found) == 1
        r = httpx.get(f"{server.url}/api/v2/ob/clusters", auth=("admin", found[0]))
        assert r.status_code == 200 and r.json()["successful"]
    with server:  # second start: admin exists, nothing printed again
        assert len(re.findall(r"with password", server.output())) == 1


def test_real_http_envelope_auth_and_logs(tmp_path, database_url):
    secret = "Very-Secret-Proxyro-77"
    with ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD}
    ) as server:
        base = server.url
        assert httpx.get(f"{base}/api/v2/ob/clusters").status_code == 401
        r = httpx.post(
            f"{base}/api/v2/ob/clusters/import",
            headers=ADMIN,
            json={
                "name": "ob1",
                "obClusterId": 7,
                "proxyroPassword": secret,
                "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
            },
        )
        assert r.status_code == 200, r.text
        assert secret not in r.text
        r = httpx.get(f"{base}/api/v2/ob/clusters", headers=ADMIN)
        trace = r.json()["traceId"]
        assert r.headers["x-trace-id"] == trace
        assert httpx.get(f"{base}/api/v2/missing", headers=ADMIN).json()["status"] == 404
    log = server.output()
    assert f"traceId={trace}" in log
    assert secret not in log and ADMIN_PASSWORD not in log
