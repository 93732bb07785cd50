"""Each parallel branch of an OBProxy or host task is named after the host it acts on when the
task is built (`branchLabel` on its subtasks, an extension), and the console's task graph heads
each column with it. In process: the tasks are only submitted, not run."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.tasks import SubtaskInstance
from tests.api.test_prepare_again import ADDRESS, add_host
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.obproxy.lab import CLUSTERS, add_hosts, app_of, obproxy_package, rs_list_cluster
from tests.obproxy.test_parameters_api import add_obproxy
from tests.web.test_pages import login

RPM = "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm"
Hosts = list[tuple[int, str]]  # (id, address)
OTHER = "198.18.0.99"


@pytest.fixture
def hosts(client: TestClient) -> Hosts:
    """RS_LIST cluster pc1 over ob1 (no obproxies), the OBProxy package, ONLINE hosts h1, h2."""
    rs_list_cluster(client)
    app = app_of(client)
    with app.db.transaction() as session:
        made = add_hosts(session, app, {1: "ONLINE", 2: "ONLINE"})
        session.add(obproxy_package(RPM, "4.2.3.0", "3"))
        session.flush()
        return [(h.id, h.inner_ip_address) for h in made]


def labels_by_branch(client: TestClient, task_id: int) -> dict[int, set[str | None]]:
    """The branch labels the task's subtasks carry, by parallelIdx."""
    task = client.get(f"/api/v2/tasks/instances/{task_id}", headers=ADMIN).json()["data"]
    found: dict[int, set[str | None]] = {}
    for sub in task["subtasks"]:
        found.setdefault(sub["parallelIdx"], set()).add(sub["branchLabel"])
    return found


def create_on(client: TestClient, hosts: Hosts) -> int:
    """Cluster pc2 installed on `hosts`: its task's id."""
    answer = client.post(
        CLUSTERS,
        headers=ADMIN,
        json={
            "name": "pc2",
            "workMode": "RS_LIST",
            "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
            "obproxyInstallParam": {
                "hostIds": [host_id for host_id, _ in hosts],
                "sqlPort": 2883,
                "exportPort": 2884,
                "version": RPM,
            },
        },
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["id"])


def test_a_creates_branches_are_named_after_their_hosts(client: TestClient, hosts: Hosts) -> None:
    (_, first), (_, second) = hosts
    assert labels_by_branch(client, create_on(client, hosts)) == {
        -1: {None},  # before and after the branches: on no host of its own
        0: {first},
        1: {second},
    }


def test_a_one_host_task_names_its_subtasks_after_the_host(
    client: TestClient, hosts: Hosts
) -> None:
    (host_id, address), _ = hosts
    (cluster,) = client.get(f"{CLUSTERS}?name=pc1", headers=ADMIN).json()["data"]["contents"]
    answer = client.post(
        f"{CLUSTERS}/{cluster['id']}/obproxies/batchAdd",
        headers=ADMIN,
        json={"hostIds": [host_id], "sqlPort": 2883, "exporterPort": 2884, "version": RPM},
    )
    assert answer.status_code == 200, answer.text
    (task,) = answer.json()["data"]["contents"]
    assert labels_by_branch(client, task["id"]) == {-1: {address}}


def test_prepare_host_names_its_subtasks_after_the_host(client: TestClient) -> None:
    _, task_id = add_host(client)
    assert labels_by_branch(client, task_id) == {-1: {ADDRESS}}


def column_heads(page: str) -> list[str]:
    return re.findall(r'<g class="head" data-head="([^"]*)"', page)


def test_the_task_graph_heads_each_host_column_with_its_address(
    client: TestClient, hosts: Hosts
) -> None:
    task_id = create_on(client, hosts)
    login(client, "admin", ADMIN_PASSWORD)
    page = client.get(f"/console/tasks/{task_id}")
    assert page.status_code == 200
    assert column_heads(page.text) == [address for _, address in hosts]


def test_a_task_made_before_branches_had_labels_heads_them_by_index(
    client: TestClient, hosts: Hosts
) -> None:
    task_id = create_on(client, hosts)
    with app_of(client).db.transaction() as session:  # as a task from before 0012 has them
        session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.task_id == task_id)
            .values(branch_label=None)
        )
    login(client, "admin", ADMIN_PASSWORD)
    page = client.get(f"/console/tasks/{task_id}")
    assert column_heads(page.text) == ["branch 0", "branch 1"]


@pytest.mark.parametrize("method, action", [("POST", "/restart"), ("DELETE", "")])
def test_an_operation_on_obproxies_names_each_branch_after_its_obproxys_host(
    client: TestClient, method: str, action: str
) -> None:
    cluster_id = rs_list_cluster(client)
    ids = [add_obproxy(client, cluster_id, port) for port in (2883, 2893)]
    with app_of(client).db.transaction() as session:  # the rows' own addresses, told apart
        session.execute(update(ObproxyServer).where(ObproxyServer.id == ids[1]).values(ip=OTHER))
    path = f"{CLUSTERS}/{cluster_id}/obproxies/{','.join(map(str, ids))}{action}"
    answer = client.request(method, path, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found = labels_by_branch(client, answer.json()["data"]["id"])
    assert found.pop(-1) == {None}
    assert sorted(label for labels in found.values() for label in labels) == ["127.0.0.1", OTHER]
