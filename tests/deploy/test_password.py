"""The root@proxysys password on real test hosts: given at create, changed by the "Change obproxy
password" task one obproxy after the other with the credential switching last, kept by a later
restart, and a change that fails half-way (an obproxy killed) rolled back to the old password
everywhere. Health checks run every second throughout and never see a wrong password."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from obfleet.store.models.credentials import Credential
from tests.deploy.conftest import (
    Fleet,
    assert_no_secrets,
    fleet_server,
    running_fleet,
    sha1hex,
)
from tests.deploy.liveness import HEALTH_ENV, kill_obproxy, wait_for_obproxy
from tests.deploy.test_deploy import cluster_named, create
from tests.deploy.test_restart import can_log_in
from tests.support.testhosts import HostLab

pytestmark = pytest.mark.hosts

OLD, NEW = "OLd_pass.12", "NEw_pass.34"
CHAIN_END = ["Update obproxy credential", "Update obproxy status", "Finish node"]


@pytest.fixture
def fleet(lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    """The deploy fleet, with health checks every second."""
    for host in lab.hosts:
        host.reset()
    server = fleet_server(lab, tmp_path / "data", database_url, env=HEALTH_ENV)
    with running_fleet(server, lab, standin_rpm, database_url) as running:
        yield running
    for host in lab.hosts:
        host.reset()


def change(fleet: Fleet, cluster_id: int, password: str) -> dict[str, Any]:
    return fleet.post(  # type: ignore[no-any-return]
        f"/api/v2/obproxy/clusters/{cluster_id}/changePassword", {"password": password}
    )


def credential_names(fleet: Fleet) -> set[str]:
    with fleet.db.session() as session:
        return {c.name for c in session.query(Credential)}


def deploy(fleet: Fleet, name: str) -> dict[str, Any]:
    """Two obproxies (RS_LIST) on the first two hosts, root@proxysys given as OLD."""
    fleet.succeeded(create(fleet, name, "RS_LIST", fleet.hosts[:2], proxysysPassword=OLD)["id"])
    assert fleet.proxysys_password(name) == OLD
    return cluster_named(fleet, name)


def test_the_password_changes_on_every_obproxy_then_in_the_credential(fleet: Fleet) -> None:
    cluster = deploy(fleet, "pc_pw")
    first, second = fleet.hosts[:2]
    assert can_log_in(first.ip, OLD) and can_log_in(second.ip, OLD)

    task = change(fleet, cluster["id"], NEW)
    names = [s["name"] for s in task["subtasks"]]
    assert names == [
        "Prepare change obproxy password",
        *["Change obproxy password"] * 2,
        *CHAIN_END,
    ]
    assert [s["parallelIdx"] for s in task["subtasks"]][1:3] == [0, 1]
    done = fleet.succeeded(task["id"])

    for host in (first, second):
        assert can_log_in(host.ip, NEW) and not can_log_in(host.ip, OLD)
    assert fleet.proxysys_password("pc_pw") == NEW
    assert "proxysys_pc_pw_next" not in credential_names(fleet)
    # The health checks log in with the new password: every obproxy is seen alive after the
    # task ended, and RUNNING.
    ended = datetime.fromisoformat(done["finishTime"])
    for host in (first, second):
        wait_for_obproxy(fleet, "pc_pw", host.ip, "RUNNING", active_after=ended)

    # A restart starts it with the cluster's credential on its command line: the new one.
    ids = ",".join(str(s["id"]) for s in cluster["obproxies"] if s["ip"] == first.ip)
    fleet.succeeded(
        fleet.post(f"/api/v2/obproxy/clusters/{cluster['id']}/obproxies/{ids}/restart")["id"]
    )
    assert can_log_in(first.ip, NEW) and not can_log_in(first.ip, OLD)

    texts = [str(task), str(done), *fleet.logs(done).values()]
    assert_no_secrets(texts, [OLD, NEW, sha1hex(OLD), sha1hex(NEW)])


def test_a_change_that_fails_half_way_rolls_back_to_the_old_password(fleet: Fleet) -> None:
    cluster = deploy(fleet, "pc_rb")
    # The task changes them in id order (their rows were recorded in parallel).
    in_order = [s["ip"] for s in sorted(cluster["obproxies"], key=lambda s: s["id"])]
    first, second = (fleet.lab.host(ip) for ip in in_order)
    kill_obproxy(second)  # the second obproxy cannot take the new password
    wait_for_obproxy(fleet, "pc_rb", second.ip, "UNAVAILABLE")

    task = change(fleet, cluster["id"], NEW)
    failed_task = fleet.wait(task["id"])
    assert failed_task["status"] == "FAILED"
    by_name = [(s["name"], s["parallelIdx"], s["status"]) for s in failed_task["subtasks"]]
    assert ("Change obproxy password", 0, "SUCCESSFUL") in by_name
    assert ("Change obproxy password", 1, "FAILED") in by_name
    # Half-way: the first has the new password, the credential still the old one.
    assert can_log_in(first.ip, NEW) and not can_log_in(first.ip, OLD)
    assert fleet.proxysys_password("pc_rb") == OLD
    statuses = {s["ip"]: s["status"] for s in cluster_named(fleet, "pc_rb")["obproxies"]}
    assert statuses == {first.ip: "REFRESHING", second.ip: "REFRESHING"}  # held by the task

    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    rolled = fleet.wait(task["id"])
    assert (rolled["status"], rolled["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    assert can_log_in(first.ip, OLD) and not can_log_in(first.ip, NEW)
    assert fleet.proxysys_password("pc_rb") == OLD
    assert "proxysys_pc_rb_next" not in credential_names(fleet)
    # Settled by a login: the first RUNNING (health checks keep it so), the killed one not.
    wait_for_obproxy(fleet, "pc_rb", first.ip, "RUNNING")
    wait_for_obproxy(fleet, "pc_rb", second.ip, "UNAVAILABLE")
    assert_no_secrets([*fleet.logs(rolled).values()], [OLD, NEW, sha1hex(OLD), sha1hex(NEW)])
