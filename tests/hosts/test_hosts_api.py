"""OCP's host endpoints without reaching any host (no task engine runs here): batchCreate's
answer, duplicates, bad input refused with nothing stored, list filters, delete refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from obfleet.engine.targets import record_targets
from obfleet.hosts.facts import parse_os_release
from obfleet.records import targets
from obfleet.services.hosts import normalize_address
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN
from tests.hosts.conftest import (
    HOSTS,
    add_credential,
    batch_create,
    created_tasks,
    get_host,
    list_hosts,
    password_credential,
)

# The docs' own sample request (ids of an OCP's IDC and host type included).
DOC_SAMPLE = (
    '{"hostBasicDataList":[{"innerIpAddress":"198.18.255.1"}],"sshPort":22,"typeId":1,'
    '"idcId":1000002,"kind":"DEDICATED_PHYSICAL_MACHINE","credentialId":%d}'
)


def nothing_stored(client) -> None:
    assert list_hosts(client)["page"]["totalElements"] == 0
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]
    assert tasks["contents"] == []


def test_doc_sample_answers_with_a_prepare_host_task(client):
    credential = password_credential(client)
    r = client.post(
        f"{HOSTS}/batchCreate",
        headers={**ADMIN, "content-type": "application/json"},
        content=DOC_SAMPLE % credential,
    )
    assert r.status_code == 200, r.text
    (task,) = r.json()["data"]["contents"]
    assert task["name"] == "Prepare host" and task["type"] == "MANUAL"
    assert task["status"] == "RUNNING" and task["operation"] == "EXECUTE"
    names = [s["name"] for s in task["subtasks"]]
    assert names == [
        "Pre check for create host",
        "Collect host facts",
        "Create admin user",
        "Update host status",
    ]
    first, facts, user, status = task["subtasks"]
    assert [s["status"] for s in task["subtasks"]] == ["READY", "PENDING", "PENDING", "PENDING"]
    assert first["downstreams"] == [facts["id"]] and facts["upstreams"] == [first["id"]]
    assert facts["downstreams"] == [user["id"]] and user["upstreams"] == [facts["id"]]
    assert user["downstreams"] == [status["id"]] and status["upstreams"] == [user["id"]]
    host = get_host(client, task["hostId"])
    assert host["innerIpAddress"] == "198.18.255.1" and host["name"] == "198.18.255.1"
    assert host["status"] == "NEW" and host["sshPort"] == 22
    assert host["kind"] == "DEDICATED_PHYSICAL_MACHINE" and host["credentialId"] == credential
    assert host["hostKeyFingerprint"] is None and host["services"] == []
    # Whatever IDC and type the client names, obfleet has one of each.
    assert (host["idcId"], host["idcName"], host["typeId"], host["typeName"]) == (
        1,
        "default",
        1,
        "default",
    )
    assert host["regionName"] == "default" and host["hostAgentStatus"] is None


def test_single_host_takes_alias_serial_and_description(client):
    credential = password_credential(client)
    r = batch_create(
        client,
        credential,
        alias="Server 1",
        description="Test server",
        hostBasicDataList=[{"innerIpAddress": "Edge-1.Lab", "serialNumber": "6CU4120W67"}],
    )
    assert r.status_code == 200, r.text
    host = get_host(client, r.json()["data"]["contents"][0]["hostId"])
    assert host["innerIpAddress"] == "edge-1.lab" and host["alias"] == "Server 1"
    assert host["serialNumber"] == "6CU4120W67" and host["description"] == "Test server"


def test_duplicates_are_refused_with_7001_and_nothing_created(client):
    credential = password_credential(client)
    created_tasks(client, credential, "198.18.255.1", "host-a.lab", "::ffff:198.18.255.9")
    for dup in ("198.18.255.1", "HOST-A.lab", "0:0:0:0:0:ffff:c612:ff09"):
        r = batch_create(client, credential, "198.18.255.20", dup)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == 7001
    # Twice in one request: refused as bad input.
    r = batch_create(client, credential, "198.18.255.21", "198.18.255.21")
    assert r.status_code == 400 and "more than once" in r.json()["error"]["message"]
    hosts = list_hosts(client)
    assert hosts["page"]["totalElements"] == 3
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]
    assert tasks["page"]["totalElements"] == 3
    # The same address on another SSH port is another host.
    r = batch_create(client, credential, "198.18.255.1", sshPort=2222)
    assert r.status_code == 200, r.text


# Shell syntax in an address is refused before anything is stored (so before any task).
CANARY = "/tmp/obfleet-hosts-canary"
TWO_HOSTS = [{"innerIpAddress": "198.18.255.3"}, {"innerIpAddress": "198.18.255.4"}]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"hostBasicDataList": [{"innerIpAddress": f"198.18.255.1; touch {CANARY}"}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": f"$(touch {CANARY})"}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": "-oProxyCommand=touch_canary"}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": "fe80::1%eth0"}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": "0.0.0.0"}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": ""}]}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": "a" * 64 + ".lab"}]}, 1003),
        ({"hostBasicDataList": []}, 1003),
        ({"hostBasicDataList": [{"innerIpAddress": f"h{i}.lab"} for i in range(201)]}, 1003),
        ({"hostBasicDataList": [{"serialNumber": "x"}]}, 1003),
        ({"sshPort": 0}, 1003),
        ({"sshPort": 65536}, 1003),
        ({"kind": "DEDICATED_VM"}, 1003),
        ({"credentialId": 999999}, 7601),
        ({"alias": "one alias, two hosts", "hostBasicDataList": TWO_HOSTS}, 1003),
    ],
)
def test_bad_input_is_refused_with_nothing_stored(client, fields, code):
    credential = password_credential(client)
    r = batch_create(client, credential, "198.18.255.1", **fields)
    assert r.status_code == (404 if code == 7601 else 400), r.text
    assert r.json()["error"]["code"] == code
    nothing_stored(client)


def test_a_credential_for_something_else_is_refused(client):
    credential = add_credential(
        client, "ob", targetType="OB_CLUSTER", authType="PASSWORD", username="u", password="p"
    )
    r = batch_create(client, credential, "198.18.255.1")
    assert r.status_code == 400 and "not a HOST one" in r.json()["error"]["message"]
    nothing_stored(client)


def test_addresses_are_normalized():
    assert normalize_address(" 198.18.0.1 ") == "198.18.0.1"
    assert normalize_address("0:0::FFFF:198.18.0.1") == "::ffff:c612:1"
    assert normalize_address("Node-7.Example") == "node-7.example"
    # Digits in a name are fine, as long as the resolver cannot read it as an IPv4 address.
    assert normalize_address("10-0-0-1.Lab") == "10-0-0-1.lab"
    assert normalize_address("7node.lab") == "7node.lab"


def test_os_release_parsing():
    text = (
        '# comment\nNAME="Ubuntu"\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'
        "ID=ubuntu\nBROKEN='unterminated\n"
    )
    assert parse_os_release(text) == ("Ubuntu", "22.04")
    assert parse_os_release("NAME=Alpine\x07 Linux\n") == ("Alpine Linux", None)
    assert parse_os_release("") == (None, None)


def set_status(client, host_id: int, status: str) -> None:
    with client.app.state.ctx.db.transaction() as session:
        session.get(Host, host_id).status = status


def test_list_filters_pages_and_sorts(client):
    credential = password_credential(client)
    tasks = created_tasks(
        client, credential, "198.18.255.1", "198.18.255.2", "198.18.255.3", "edge.lab"
    )
    ids = [t["hostId"] for t in tasks]
    set_status(client, ids[1], "OFFLINE")
    set_status(client, ids[2], "ONLINE")

    def addresses(**params) -> list[str]:
        return [h["innerIpAddress"] for h in list_hosts(client, **params)["contents"]]

    assert addresses() == ["198.18.255.1", "198.18.255.2", "198.18.255.3", "edge.lab"]
    assert addresses(status="NEW") == ["198.18.255.1", "edge.lab"]
    assert addresses(status="ONLINE,OFFLINE") == ["198.18.255.2", "198.18.255.3"]
    assert addresses(status=["ONLINE", "NEW"]) == ["198.18.255.1", "198.18.255.3", "edge.lab"]
    assert addresses(keyword="255.3") == ["198.18.255.3"]
    assert addresses(keyword="EDGE") == ["edge.lab"]
    assert addresses(keyword="%") == []  # a LIKE wildcard is matched literally
    assert addresses(sort="innerIpAddress,desc")[0] == "edge.lab"
    page = list_hosts(client, page=2, size=3)
    assert [h["id"] for h in page["contents"]] == [ids[3]]
    assert page["page"] == {"number": 2, "size": 3, "totalElements": 4, "totalPages": 2}
    for params in ({"status": "RUNNING"}, {"sort": "password,asc"}, {"size": 2001}):
        r = client.get(HOSTS, headers=ADMIN, params=params)
        assert r.status_code == 400 and r.json()["error"]["code"] == 1003, params


def set_task_status(client, status: str, *task_ids: int) -> None:
    """Set the status of the tasks `task_ids` (all tasks when none is given)."""
    stmt = update(TaskInstance).values(status=status)
    if task_ids:
        stmt = stmt.where(TaskInstance.id.in_(task_ids))
    with client.app.state.ctx.db.transaction() as session:
        session.execute(stmt)


def put_task(
    client, name: str, status: str, context: dict, host_id: int | None = None, hosts=()
) -> int:
    """A task row as the engine's submit stores one, acting on `hosts` (no engine runs
    here)."""
    with client.app.state.ctx.db.transaction() as session:
        task = TaskInstance(
            name=name,
            status=status,
            operation="EXECUTE",
            creator="admin",
            context=context,
            host_id=host_id,
        )
        session.add(task)
        session.flush()
        record_targets(session, task.id, [targets.host(h) for h in hosts])
        return task.id


def task_ids(client) -> list[int]:
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]["contents"]
    return sorted(t["id"] for t in tasks)


def test_unknown_host_is_7005(client):
    r = client.get(f"{HOSTS}/424242", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 7005
    r = client.delete(f"{HOSTS}/424242", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 7005


def put_obproxy(client, host_id: int) -> int:
    """An OBProxy instance recorded on the host, as the Install obproxy flow records one."""
    with client.app.state.ctx.db.transaction() as session:
        cluster = ObproxyCluster(name="pc1")
        session.add(cluster)
        session.flush()
        server = ObproxyServer(
            cluster_id=cluster.id,
            host_id=host_id,
            ip="198.18.255.1",
            sql_port=2883,
            exporter_port=2884,
            version="4.2.1.0",
            status="RUNNING",
        )
        session.add(server)
        session.flush()
        return server.id


def drop_obproxy(client, server_id: int) -> None:
    with client.app.state.ctx.db.transaction() as session:
        session.delete(session.get(ObproxyServer, server_id))


def test_delete_is_refused_while_an_obproxy_lives_on_the_host(client):
    credential = password_credential(client)
    used, free = (t["hostId"] for t in created_tasks(client, credential, "198.18.255.1", "b.lab"))
    set_task_status(client, "SUCCESSFUL")  # their Prepare host tasks finished
    server = put_obproxy(client, used)
    services = get_host(client, used)["services"]
    assert services == [
        {"name": "pc1", "version": "4.2.1.0", "type": "OB_PROXY", "softwarePackageId": None}
    ]
    only = [h["id"] for h in list_hosts(client, includedServiceType="OB_PROXY")["contents"]]
    assert only == [used]
    rest = [h["id"] for h in list_hosts(client, excludedServiceType="OB_PROXY")["contents"]]
    assert rest == [free]
    assert list_hosts(client, includedServiceType="OB_CLUSTER")["contents"] == []

    r = client.delete(f"{HOSTS}/{used}", headers=ADMIN)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == 7004 and "OBProxy" in r.json()["error"]["message"]
    r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": [free, used]})
    assert r.status_code == 409 and r.json()["error"]["code"] == 7004
    assert list_hosts(client)["page"]["totalElements"] == 2  # all or nothing

    drop_obproxy(client, server)
    assert client.delete(f"{HOSTS}/{used}", headers=ADMIN).status_code == 200
    assert client.get(f"{HOSTS}/{used}", headers=ADMIN).json()["error"]["code"] == 7005
    r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": [free, 424242]})
    assert r.status_code == 404 and r.json()["error"]["code"] == 7005
    r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": []})
    assert r.status_code == 400
    r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": [free, free]})
    assert r.status_code == 200, r.text
    assert list_hosts(client)["page"]["totalElements"] == 0


@pytest.mark.parametrize(
    "address",
    [
        "010.0.0.10",  # getaddrinfo: 8.0.0.10 (octal)
        "0x0a.0.0.1",  # 10.0.0.1 (hexadecimal)
        "2130706433",  # 127.0.0.1 (one 32-bit number)
        "10.1",  # 10.0.0.1 (shortened)
        "0xa",  # 0.0.0.10
        "198.18.255.01",  # a leading zero: not the same as 198.18.255.1 to the resolver
        "edge.lab.7",  # a last label of digits only
    ],
)
def test_names_the_resolver_reads_as_ipv4_addresses_are_refused(client, address):
    credential = password_credential(client)
    r = batch_create(client, credential, address)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003
    assert "four decimal numbers" in r.json()["error"]["message"]
    nothing_stored(client)


@pytest.mark.parametrize(
    "fields",
    [
        {"alias": "web\n1"},
        {"alias": "web\x1b[31m1"},
        {"description": "line one\r\nline two"},
        {"description": "nul\x00byte"},
        {"hostBasicDataList": [{"innerIpAddress": "198.18.255.1", "serialNumber": "SN\x00"}]},
        {"hostBasicDataList": [{"innerIpAddress": "198.18.255.1", "serialNumber": "SN\t1"}]},
    ],
)
def test_control_characters_in_free_text_are_refused(client, fields):
    credential = password_credential(client)
    r = batch_create(client, credential, "198.18.255.1", **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003
    assert "control characters" in r.json()["error"]["message"]
    nothing_stored(client)


def test_delete_is_refused_while_a_task_on_the_host_runs(client):
    """A running task keeps the hosts it acts on; a FAILED one does not (deleting what a
    failed install left is how an operator gives up on it)."""
    credential = password_credential(client)
    (prepare_a, prepare_b) = created_tasks(client, credential, "198.18.255.1", "b.lab")
    a, b = prepare_a["hostId"], prepare_b["hostId"]

    def refused(*host_ids: int, names: list[int]) -> None:
        before = task_ids(client)
        if len(host_ids) == 1:
            r = client.delete(f"{HOSTS}/{host_ids[0]}", headers=ADMIN)
        else:
            r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": host_ids})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == 7004 and "cancel them" in error["message"], error
        for task_id in names:
            assert f"{task_id} (" in error["message"], error
        assert sorted(h["id"] for h in list_hosts(client)["contents"]) == [a, b]
        assert task_ids(client) == before

    # Their own Prepare host tasks, RUNNING.
    refused(a, names=[prepare_a["id"]])
    set_task_status(client, "FAILED", prepare_a["id"])
    refused(b, a, names=[prepare_b["id"]])  # all or nothing: `a` alone could go now
    set_task_status(client, "SUCCESSFUL")

    # An Install obproxy of batchAdd (host_id on the task), and one of a cluster create (the
    # hosts in its context's host_ids), on `a`: neither lets it go while unfinished.
    batch_add = put_task(
        client,
        "Install obproxy",
        "RUNNING",
        {"stringMap": {"obproxy_cluster_id": "1", "host_id": str(a)}, "listMap": {}},
        host_id=a,
        hosts=[a],
    )
    create = put_task(
        client,
        "Install obproxy",
        "RUNNING",
        {"stringMap": {"obproxy_cluster_id": "2"}, "listMap": {"host_ids": [str(b), str(a)]}},
        hosts=[b, a],
    )
    refused(a, names=[batch_add, create])
    refused(b, names=[create])
    set_task_status(client, "FAILED", create)
    refused(a, b, names=[batch_add])
    # Ended (FAILED, or SUCCESSFUL): the hosts can be forgotten.
    set_task_status(client, "FAILED", batch_add)
    r = client.post(f"{HOSTS}/batchDelete", headers=ADMIN, json={"hostIdList": [a, b]})
    assert r.status_code == 200, r.text
    assert list_hosts(client)["page"]["totalElements"] == 0
