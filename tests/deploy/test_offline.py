"""Deleting OBProxies on real test hosts ("Offline obproxy"): one obproxy of a cluster, then
the cluster with the rest; failures in the middle (sshd killed, an immutable install path),
their rollback and their retry; and the leftovers of a failed install, whose host holds files
that are not its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from obfleet.obproxy.configurl import config_url
from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOME,
    OB_CLUSTER,
    RPM_NAME,
    SQL_PORT,
    Fleet,
    assert_clean,
    assert_no_secrets,
    listening,
    obproxy_processes,
    proxyconfig,
    sha1hex,
)
from tests.obproxy.test_offline_api import assert_offline_shape
from tests.support.testhosts import NetnsHost

pytestmark = pytest.mark.hosts

OB_LINK = {"clusterName": OB_CLUSTER, "obClusterId": 1, "username": "proxyro"}


def create(fleet: Fleet, name: str, mode: str, hosts: list[NetnsHost]) -> dict[str, Any]:
    return fleet.post(  # type: ignore[no-any-return]
        "/api/v2/obproxy/clusters",
        {
            "name": name,
            "workMode": mode,
            "obLinks": [OB_LINK],
            "obproxyInstallParam": {
                "hostIds": [fleet.host_id(h) for h in hosts],
                "sqlPort": SQL_PORT,
                "exportPort": EXPORTER_PORT,
                "version": RPM_NAME,
            },
            "startupParameters": [],
            "parameters": [],
        },
    )


def cluster_named(fleet: Fleet, name: str) -> dict[str, Any]:
    (cluster,) = fleet.get(f"/api/v2/obproxy/clusters?name={name}")["contents"]
    return cluster  # type: ignore[no-any-return]


def obproxy_on(cluster: dict[str, Any], host: NetnsHost) -> dict[str, Any]:
    (found,) = [s for s in cluster["obproxies"] if s["ip"] == host.ip]
    return found  # type: ignore[no-any-return]


def delete(fleet: Fleet, path: str) -> dict[str, Any]:
    r = fleet.api.delete(f"/api/v2/obproxy/clusters/{path}")
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def runs(host: NetnsHost, password: str) -> bool:
    """An OBProxy runs from the install path and root@proxysys logs in."""
    return bool(obproxy_processes(host)) and "app_name" in proxyconfig(host, password)


def failed_subtasks(task: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted(
        (s["name"], s["parallelIdx"]) for s in task["subtasks"] if s["status"] == "FAILED"
    )


def log_of(fleet: Fleet, task: dict[str, Any], name: str, idx: int = -1) -> str:
    (sub,) = [s for s in task["subtasks"] if s["name"] == name and s["parallelIdx"] == idx]
    return fleet.logs({"id": task["id"], "subtasks": [sub]})[sub["id"]]


def statuses(fleet: Fleet, name: str) -> dict[str, tuple[str, str]]:
    return {
        s["ip"]: (s["status"], s["operateStatus"]) for s in cluster_named(fleet, name)["obproxies"]
    }


@contextmanager
def immutable(host: NetnsHost, path: str) -> Iterator[None]:
    """chattr +i: the directory's entries can be neither added, removed nor renamed."""
    host.run(f"chattr +i {path}", check=True)
    try:
        yield
    finally:
        host.run(f"chattr -i {path}")


def test_delete_one_obproxy_then_the_cluster_with_the_others(fleet: Fleet) -> None:
    hosts = fleet.hosts[:3]
    fleet.succeeded(create(fleet, "po_url", "CONFIG_URL", hosts)["id"])
    cluster = cluster_named(fleet, "po_url")
    password = fleet.proxysys_password("po_url")
    secrets = [password, sha1hex(password)]
    gone = obproxy_on(cluster, hosts[0])

    task = delete(fleet, f"{cluster['id']}/obproxies/{gone['id']}")
    assert_offline_shape(task, 1)
    assert task["context"]["listMap"]["obproxy_server_ids"] == [str(gone["id"])]
    assert task["context"]["listMap"]["host_ids"] == [str(fleet.host_id(hosts[0]))]
    assert task["context"]["stringMap"]["service_name"] == "po_url"
    assert task["context"]["stringMap"]["obproxy_need_delete_cluster"] == "false"
    done = fleet.succeeded(task["id"])
    assert_clean(hosts[0])
    assert not hosts[0].run("ls -A /home/admin", check=True).stdout.strip(), "nothing left aside"
    for host in hosts[1:]:
        assert runs(host, password)
    assert statuses(fleet, "po_url") == {h.ip: ("RUNNING", "NORMAL") for h in hosts[1:]}
    logs = fleet.logs(done)
    assert all(logs.values()), "every subtask logs what it did"
    stop_log = log_of(fleet, done, "Stop and uninstall obproxy", 0)
    assert "with SIGTERM" in stop_log and f"{HOME} renamed to" in stop_log
    assert f"ports {SQL_PORT} and {EXPORTER_PORT} are free on {hosts[0].ip}" in stop_log
    assert_no_secrets([*logs.values(), str(done)], secrets)

    url = config_url(fleet.server.url, "po_url")
    served = fleet.api.get(url).json()
    assert served["Code"] == 200
    assert [u["ObRegion"] for u in served["Data"]["ObRootServiceInfoUrlList"]] == [OB_CLUSTER]

    whole = delete(fleet, f"{cluster['id']}")
    assert_offline_shape(whole, 2)
    assert whole["context"]["stringMap"]["obproxy_need_delete_cluster"] == "true"
    whole_done = fleet.succeeded(whole["id"])
    for host in hosts:
        assert_clean(host)
    r = fleet.api.get(f"/api/v2/obproxy/clusters/{cluster['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == 21001
    assert fleet.get("/api/v2/credentials?targetType=OBPROXY")["contents"] == []
    served = fleet.api.get(url).json()
    assert served["Code"] == 404 and "no obproxy cluster named po_url" in served["Message"]
    assert "OBProxy cluster po_url deleted" in log_of(fleet, whole_done, "Finish node")
    assert_no_secrets([*fleet.logs(whole_done).values()], secrets)


def test_failures_in_the_middle_roll_back_or_are_fixed_and_retried(fleet: Fleet) -> None:
    hosts = fleet.hosts[:2]
    fleet.succeeded(create(fleet, "po_fault", "RS_LIST", hosts)["id"])
    cluster = cluster_named(fleet, "po_fault")
    password = fleet.proxysys_password("po_fault")
    first, second = (obproxy_on(cluster, h)["id"] for h in hosts)
    both = f"{cluster['id']}/obproxies/{first},{second}"
    settled = {h.ip: ("RUNNING", "NORMAL") for h in hosts}

    # 1. One host unreachable: its Prepare fails, the Wait node holds the other back, so
    #    nothing is stopped anywhere; the rollback gives both their status back.
    hosts[1].kill_sshd()
    failed = fleet.wait(delete(fleet, both)["id"])
    assert failed["status"] == "FAILED"
    assert failed_subtasks(failed) == [("Prepare offline obproxy", 1)]
    assert {s["status"] for s in failed["subtasks"] if s["name"] == "Wait node"} == {"PENDING"}
    assert all(runs(h, password) for h in hosts)
    assert statuses(fleet, "po_fault") == {h.ip: ("DELETING", "OPERATING") for h in hosts}
    fleet.post(f"/api/v2/tasks/instances/{failed['id']}/rollback")
    rolled_back = fleet.wait(failed["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    assert statuses(fleet, "po_fault") == settled
    hosts[1].start_sshd()

    with immutable(hosts[0], HOME):
        # 2. The install path cannot be renamed: stopped, nothing deleted, the task FAILED with
        #    the reason; its rollback starts the obproxy again and it logs in again.
        failed = fleet.wait(delete(fleet, f"{cluster['id']}/obproxies/{first}")["id"])
        assert failed["status"] == "FAILED"
        assert failed_subtasks(failed) == [("Stop and uninstall obproxy", 0)]
        log = log_of(fleet, failed, "Stop and uninstall obproxy", 0)
        assert f"cannot remove {HOME} on {hosts[0].ip}" in log
        assert "Operation not permitted" in log and "Nothing of it was deleted" in log
        assert obproxy_processes(hosts[0]) == [] and hosts[0].file_exists(f"{HOME}/bin/obproxy")
        assert not listening(hosts[0], SQL_PORT)
        fleet.post(f"/api/v2/tasks/instances/{failed['id']}/rollback")
        rolled_back = fleet.wait(failed["id"])
        assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
        assert runs(hosts[0], password)
        assert statuses(fleet, "po_fault") == settled

        # 3. Both at once: the second host is uninstalled, the first fails as before, and the
        #    records stay until every host is clean.
        failed = fleet.wait(delete(fleet, both)["id"])
        assert failed_subtasks(failed) == [("Stop and uninstall obproxy", 0)]
        assert_clean(hosts[1])
        assert obproxy_processes(hosts[0]) == [] and hosts[0].file_exists(f"{HOME}/bin/obproxy")
        assert statuses(fleet, "po_fault") == {h.ip: ("DELETING", "OPERATING") for h in hosts}
    # Fixed: retried, it finishes.
    retried = fleet.post(f"/api/v2/tasks/instances/{failed['id']}/retry")
    assert retried["operation"] == "RETRY"
    done = fleet.succeeded(failed["id"])
    for host in hosts:
        assert_clean(host)
    assert cluster_named(fleet, "po_fault")["obproxies"] == []
    assert "is stopped and uninstalled" in log_of(fleet, done, "Stop and uninstall obproxy", 0)


def test_a_failed_installs_leftover_leaves_files_that_are_not_its_own(fleet: Fleet) -> None:
    """An install that failed its check (another program lives in the install path) leaves a
    CREATING row; deleting the cluster forgets it without touching that program, and
    uninstalls the obproxy that did install."""
    foreign, fine = fleet.hosts[2], fleet.hosts[3]
    foreign.run(f"mkdir -p {HOME} && echo mine > {HOME}/data", check=True)
    foreign.spawn(["/bin/sh", "-c", f"cd {HOME} && exec sleep 600"])  # reset() stops it
    failed = fleet.wait(create(fleet, "po_left", "RS_LIST", [foreign, fine])["id"])
    assert failed["status"] == "FAILED"
    assert statuses(fleet, "po_left") == {
        foreign.ip: ("CREATING", "OPERATING"),
        fine.ip: ("RUNNING", "NORMAL"),
    }
    squatting = foreign.pgrep("sleep 600")
    assert squatting
    cluster = cluster_named(fleet, "po_left")
    leftover = obproxy_on(cluster, foreign)["id"]

    task = delete(fleet, str(cluster["id"]))
    assert_offline_shape(task, 2)
    done = fleet.succeeded(task["id"])
    assert_clean(fine)
    assert foreign.read_file(f"{HOME}/data") == "mine\n"
    assert foreign.pgrep("sleep 600") == squatting
    assert fleet.get("/api/v2/obproxy/clusters?name=po_left")["contents"] == []
    idx = task["context"]["listMap"]["obproxy_server_ids"].index(str(leftover))
    prepare = log_of(fleet, done, "Prepare offline obproxy", idx)
    assert "its host is left as it is" in prepare and "not its own" in prepare
