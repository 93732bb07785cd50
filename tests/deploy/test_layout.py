"""The install layout on real test hosts: a cluster's install path and run-as user, and two
clusters sharing a host on other ports and install paths; a third on the same install path, in
one, or on the same ports is refused. The stand-in runs as the cluster's user (its /proc status
says so) and its files are that user's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOME,
    OB_CLUSTER,
    RPM_NAME,
    SQL_PORT,
    VERSION,
    Fleet,
    assert_clean,
    proxyconfig,
)
from tests.deploy.test_deploy import OB_LINK, cluster_named, create
from tests.support.testhosts import NetnsHost

pytestmark = pytest.mark.hosts

# On the hosts' private /home tmpfs: not the RPM's own /home/admin.
OTHER_PATH = "/home/pc_b"
OTHER_HOME = f"{OTHER_PATH}/obproxy-{VERSION}"
OTHER_SQL, OTHER_EXPORTER = 3883, 3884


def uid_of(host: NetnsHost, user: str) -> int:
    return int(host.run(f"id -u {user}", check=True).stdout)


def process_uid(host: NetnsHost, home: str) -> int:
    """The real uid of the OBProxy running from `home`, as its /proc/<pid>/status says."""
    pid = int(host.run(f"cat {home}/run/obproxy.pid", check=True).stdout)
    status = host.run(f"cat /proc/{pid}/status", check=True).stdout
    (uids,) = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
    assert len(set(uids)) == 1, f"real, effective, saved and fs uid differ: {uids}"
    return int(uids[0])


def owners(host: NetnsHost, home: str) -> set[str]:
    """The owners of everything under `home`."""
    return set(host.run(f"find {home} -printf '%u\\n'", check=True).stdout.split())


def install_on(
    fleet: Fleet, host: NetnsHost, name: str, sql: int, exporter: int, **layout: Any
) -> dict[str, Any]:
    """The answer to creating cluster `name` with one obproxy on `host` (fleet.post asserts 200)."""
    return fleet.post(  # type: ignore[no-any-return]
        "/api/v2/obproxy/clusters",
        {
            "name": name,
            "workMode": "RS_LIST",
            "obLinks": [OB_LINK],
            "obproxyInstallParam": {
                "hostIds": [fleet.host_id(host)],
                "sqlPort": sql,
                "exportPort": exporter,
                "version": RPM_NAME,
            },
            **layout,
        },
    )


def refused(
    fleet: Fleet, host: NetnsHost, name: str, sql: int, exporter: int, **layout: Any
) -> str:
    body = {
        "name": name,
        "workMode": "RS_LIST",
        "obLinks": [OB_LINK],
        "obproxyInstallParam": {
            "hostIds": [fleet.host_id(host)],
            "sqlPort": sql,
            "exportPort": exporter,
            "version": RPM_NAME,
        },
        **layout,
    }
    r = fleet.api.post("/api/v2/obproxy/clusters", json=body)
    assert r.status_code == 409, r.text
    return str(r.json()["error"]["message"])


def test_two_clusters_share_a_host_each_in_its_path_and_as_its_user(fleet: Fleet) -> None:
    host = fleet.hosts[0]
    fleet.succeeded(create(fleet, "pc_a", "RS_LIST", [host])["id"])
    fleet.succeeded(
        install_on(
            fleet, host, "pc_b", OTHER_SQL, OTHER_EXPORTER, installPath=OTHER_PATH, runUser="root"
        )["id"]
    )
    a, b = cluster_named(fleet, "pc_a"), cluster_named(fleet, "pc_b")
    assert (a["installPath"], a["runUser"]) == ("/home/admin", "admin")
    assert (b["installPath"], b["runUser"]) == (OTHER_PATH, "root")
    assert [s["status"] for s in a["obproxies"] + b["obproxies"]] == ["RUNNING", "RUNNING"]

    # pc_a: the default layout, run as admin, which Prepare host created on the host.
    admin = uid_of(host, "admin")
    assert admin != 0
    assert process_uid(host, HOME) == admin
    assert owners(host, HOME) == {"admin"}
    # pc_b: its own install path, run as root: two OBProxies side by side, each answering.
    assert process_uid(host, OTHER_HOME) == 0
    assert owners(host, OTHER_HOME) == {"root"}
    config_a = proxyconfig(host, fleet.proxysys_password("pc_a"))
    assert (config_a["app_name"], config_a["listen_port"]) == ("pc_a", str(SQL_PORT))
    assert config_a["rootservice_cluster_name"] == OB_CLUSTER

    # A third on either cluster's install path, or on its ports, is refused before any task.
    same_path = refused(fleet, host, "pc_c", 4883, 4884)
    assert f"{HOME} on host {host.ip} is the install path of obproxy" in same_path
    same_ports = refused(
        fleet, host, "pc_d", OTHER_SQL, 4884, installPath="/home/pc_d", runUser="root"
    )
    assert f"port {OTHER_SQL} on host {host.ip} is used by obproxy" in same_ports
    nested = refused(fleet, host, "pc_e", 4883, 4884, installPath=HOME, runUser="root")
    assert f"lies in (or holds) {HOME}, the install path of obproxy" in nested
    assert {c["name"] for c in fleet.get("/api/v2/obproxy/clusters")["contents"]} == {
        "pc_a",
        "pc_b",
    }

    # Deleting one leaves the other running where it was.
    fleet.succeeded(fleet.api.delete(f"/api/v2/obproxy/clusters/{a['id']}").json()["data"]["id"])
    assert not host.file_exists(HOME)
    assert process_uid(host, OTHER_HOME) == 0
    fleet.succeeded(fleet.api.delete(f"/api/v2/obproxy/clusters/{b['id']}").json()["data"]["id"])
    assert not host.file_exists(OTHER_HOME)
    assert_clean(host)


def test_a_run_as_user_missing_on_the_host_fails_the_check_and_changes_nothing(
    fleet: Fleet,
) -> None:
    host = fleet.hosts[1]
    task = install_on(fleet, host, "pc_nobody", SQL_PORT, EXPORTER_PORT, runUser="obproxy_x")
    done = fleet.wait(task["id"])
    assert done["status"] == "FAILED"
    (failed,) = [s for s in done["subtasks"] if s["status"] == "FAILED"]
    assert failed["name"] == "Check if process not exist"
    assert (
        "user obproxy_x, whom the obproxies of this cluster run as, does not exist"
        in (fleet.logs(done)[failed["id"]])
    )
    assert_clean(host)
