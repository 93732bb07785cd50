"""OCP's OBProxy cluster endpoints: create (the doc's own sample), list, get, patch, links,
parameters, delete; every bad input refused with nothing stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN, wait_task
from tests.obproxy.test_parameter_info import KEYS as PARAMETER_INFO_KEYS
from tests.obproxy.test_parameters_api import add_obproxy

DOC_SAMPLE = (
    b'{"obproxyInstallParam":{"hostIds":[]},"obLinks":[{"clusterName":"hooray",'
    b'"clusterId":1,"username":"proxyro","obClusterId":1}],"name":"OBProxy001",'
    b'"address":"foo.bar","port":2883,"workMode":"CONFIG_URL"}'
)


def import_ob(client, name="hooray", ob_cluster_id=1, password="Proxyro_pw_1"):
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": name,
            "obClusterId": ob_cluster_id,
            "proxyroPassword": password,
            "rootServers": [
                {"address": f"198.18.0.{ob_cluster_id + 1}:2882", "role": "LEADER", "sqlPort": 2881}
            ],
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def create(client, **fields):
    body = {
        "name": "pc1",
        "workMode": "CONFIG_URL",
        "obLinks": [{"clusterName": "hooray", "obClusterId": 1, "username": "proxyro"}],
    }
    body.update(fields)
    return client.post("/api/v2/obproxy/clusters", headers=ADMIN, json=body)


def clusters(client) -> list[dict]:
    return client.get("/api/v2/obproxy/clusters", headers=ADMIN).json()["data"]["contents"]


def test_doc_sample_request_creates_cluster(engine_client):
    client = engine_client
    import_ob(client)
    r = client.post(
        "/api/v2/obproxy/clusters",
        headers={**ADMIN, "content-type": "application/json"},
        content=DOC_SAMPLE,
    )
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Install obproxy" and task["type"] == "MANUAL"
    assert [s["name"] for s in task["subtasks"]] == ["Prepare obproxy install", "Finish node"]
    assert [s["status"] for s in task["subtasks"]] in (["READY", "PENDING"], ["RUNNING", "PENDING"])
    first, finish = task["subtasks"]
    assert first["downstreams"] == [finish["id"]] and finish["upstreams"] == [first["id"]]
    assert {"parallelIdx", "seriesId", "className", "timeout", "nodeType"} <= first.keys()
    string_map = task["context"]["stringMap"]
    assert string_map["obproxy_cluster_name"] == "OBProxy001"
    done = wait_task(client, task["id"])
    assert done["status"] == "SUCCESSFUL", done
    (cluster,) = clusters(client)
    assert str(cluster["id"]) == string_map["obproxy_cluster_id"]
    assert cluster["name"] == "OBProxy001" and cluster["workMode"] == "CONFIG_URL"
    assert cluster["address"] == "foo.bar" and cluster["port"] == 2883
    assert cluster["obLinks"] == [
        {
            "clusterId": cluster["obLinks"][0]["clusterId"],
            "clusterName": "hooray",
            "username": "proxyro",
            "status": "UNAVAILABLE",  # obfleet never connects to the OceanBase cluster
            "connections": 0.0,
            "obClusterId": 1,
            "clusterType": "PRIMARY",
        }
    ]
    assert cluster["obproxies"] == [] and cluster["versions"] == [] and cluster["topo"] == []
    assert "Action=GetObProxyConfig" in cluster["configUrl"]
    assert "ObproxyClusterName=OBProxy001" in cluster["configUrl"]
    assert cluster["creatorName"] == "admin"


def test_the_create_answer_names_its_creator_and_the_task_api_gives_id_and_name(client):
    """Two forms of one task, as OCP's samples show them: the OBProxy page's TaskInstance
    (creator a name) and the task API's WrappedTaskInstance (creator {id, name})."""
    import_ob(client)
    started = create(client).json()["data"]
    shown = client.get(f"/api/v2/tasks/instances/{started['id']}", headers=ADMIN).json()["data"]
    assert started["creator"] == "admin"
    assert shown["creator"]["name"] == "admin" and set(shown["creator"]) == {"id", "name"}
    assert {**shown, "creator": "admin"} == started  # nothing else differs


def test_root_proxysys_password_generated_and_hidden(client):
    import_ob(client)
    r = create(client)
    assert r.status_code == 200, r.text
    creds = client.get("/api/v2/credentials?targetType=OBPROXY", headers=ADMIN).json()["data"]
    (cred,) = creds["contents"]
    assert cred["username"] == "root@proxysys" and cred["secret"] == "***"


def test_exporter_port_spellings_accepted(client):
    import_ob(client)
    for spelling in ("exportPort", "exporterPort"):
        r = create(
            client,
            name=f"pc_{spelling}",
            obproxyInstallParam={
                "hostIds": [4242],
                "sqlPort": 2883,
                spelling: 2883,
                "version": "x.rpm",
            },
        )
        assert r.status_code == 400 and "must differ" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({"name": "1abc"}, 400, "name"),
        ({"name": "has-dash"}, 400, "name"),
        ({"workMode": "MAGIC"}, 400, "workMode"),
        ({"workMode": "RS_LIST", "obLinks": []}, 400, "an RS_LIST cluster needs"),
        ({"workMode": "RS_LIST", "obLinks": None}, 400, "obLinks"),
        (
            {
                "workMode": "RS_LIST",
                "obLinks": [
                    {"clusterName": "hooray", "obClusterId": 1},
                    {"clusterName": "other", "obClusterId": 2},
                ],
            },
            400,
            "exactly one",
        ),
        ({"obLinks": [{"clusterName": "hooray", "obClusterId": 99}]}, 404, "obClusterId 99"),
        ({"obLinks": [{"clusterName": "wrong", "obClusterId": 1}]}, 400, "'hooray', not 'wrong'"),
        (
            {"obLinks": [{"clusterName": "hooray", "obClusterId": 1, "username": "a b"}]},
            400,
            "username",
        ),
        (
            {
                "obproxyInstallParam": {
                    "hostIds": [1],
                    "sqlPort": 80,
                    "exportPort": 2884,
                    "version": "x",
                }
            },
            400,
            "sqlPort 80",
        ),
        (
            {
                "obproxyInstallParam": {
                    "hostIds": [1],
                    "sqlPort": 2883,
                    "exportPort": 70000,
                    "version": "x",
                }
            },
            400,
            "exportPort",
        ),
        (
            {
                "obproxyInstallParam": {
                    "hostIds": [424242],
                    "sqlPort": 2883,
                    "exportPort": 2884,
                    "version": "x",
                }
            },
            404,
            "424242",
        ),
        ({"startupParameters": [{"name": "no_such_param", "value": "1"}]}, 400, "no_such_param"),
        ({"parameters": [{"name": "listen_port", "value": "2883"}]}, 400, "startupParameters"),
        ({"parameters": [{"name": "syslog_level", "value": "LOUD"}]}, 400, "syslog_level"),
        ({"parameters": [{"name": "observer_sys_password", "value": "x"}]}, 400, "managed"),
        ({"startupParameters": [{"name": "listen_port", "value": "2883"}]}, 400, "sqlPort"),
        (
            {"parameters": [{"name": "client_max_connections", "value": "1,2"}]},
            400,
            "client_max_connections",
        ),
    ],
)
def test_bad_create_refused_nothing_stored(client, fields, status, words):
    import_ob(client)
    import_ob(client, name="other", ob_cluster_id=2)
    r = create(client, **fields)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"], r.json()["error"]["message"]
    assert clusters(client) == []
    assert (
        client.get("/api/v2/credentials?targetType=OBPROXY", headers=ADMIN).json()["data"][
            "contents"
        ]
        == []
    )
    assert client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]["contents"] == []


def test_unknown_package_7514(client):
    import_ob(client)
    ctx = client.app.state.ctx
    from obfleet.records.credentials import create as create_credential
    from obfleet.store.models.hosts import Host

    with ctx.db.transaction() as session:
        cred = create_credential(
            session,
            ctx.secrets,
            name="ssh",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret="pw",
        )
        session.add(Host(name="h1", inner_ip_address="198.18.0.10", credential_id=cred.id))
        session.flush()
        host_id = session.query(Host).one().id
    r = create(
        client,
        obproxyInstallParam={
            "hostIds": [host_id],
            "sqlPort": 2883,
            "exportPort": 2884,
            "version": "obproxy-1.9.1.1-1919579.el7.x86_64.rpm",
        },
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == 7514


def test_duplicate_name_refused(client):
    import_ob(client)
    assert create(client).status_code == 200
    r = create(client)
    assert r.status_code == 409 and r.json()["error"]["code"] == 21004
    assert len(clusters(client)) == 1


def test_parameters_validated_normalised_and_shown(client):
    import_ob(client)
    r = create(
        client,
        startupParameters=[{"name": "enable_metadb_used", "value": "FALSE"}],
        parameters=[{"name": "syslog_level", "value": "WARN"}],
    )
    assert r.status_code == 200, r.text
    cluster_id = clusters(client)[0]["id"]
    params = client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters", headers=ADMIN).json()[
        "data"
    ]["contents"]
    by_name = {p["name"]: p for p in params}
    assert by_name["enable_metadb_used"]["valueString"] == "false"
    assert by_name["enable_metadb_used"]["needReboot"] is True
    assert by_name["syslog_level"]["values"] == [{"value": "WARN", "obproxies": []}]
    assert {"name", "description", "needReboot", "values"} <= by_name["syslog_level"].keys()


def test_get_patch_and_unknown(client):
    import_ob(client)
    create(client)
    cluster_id = clusters(client)[0]["id"]
    r = client.patch(
        f"/api/v2/obproxy/clusters/{cluster_id}",
        headers=ADMIN,
        json={"address": "proxy.example", "port": 3306},
    )
    assert r.status_code == 200 and r.json()["data"]["port"] == 3306
    one = client.get(f"/api/v2/obproxy/clusters/{cluster_id}", headers=ADMIN).json()["data"]
    assert one["address"] == "proxy.example"
    for method in ("get", "patch", "delete"):
        r = client.request(
            method,
            "/api/v2/obproxy/clusters/999999",
            headers=ADMIN,
            json={} if method == "patch" else None,
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == 21001
    listed = client.get("/api/v2/obproxy/clusters?name=pc&page=1&size=10", headers=ADMIN).json()
    assert listed["data"]["page"]["totalElements"] == 1


def test_links_add_remove_rules(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    create(client)
    cid = clusters(client)[0]["id"]
    body = [{"username": "proxyro", "clusterId": 2, "obClusterId": 2, "clusterName": "second"}]
    r = client.post(f"/api/v2/obproxy/clusters/{cid}/obLinks/batchAdd", headers=ADMIN, json=body)
    assert r.status_code == 200 and r.json()["data"] is None
    names = [link["clusterName"] for link in clusters(client)[0]["obLinks"]]
    assert names == ["hooray", "second"]
    again = client.post(
        f"/api/v2/obproxy/clusters/{cid}/obLinks/batchAdd", headers=ADMIN, json=body
    )
    assert again.status_code == 409
    # An OB cluster that an OBProxy cluster links to cannot be forgotten.
    ob_id = clusters(client)[0]["obLinks"][1]["clusterId"]
    assert client.delete(f"/api/v2/ob/clusters/{ob_id}", headers=ADMIN).status_code == 409
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}/obLinks/second", headers=ADMIN)
    assert r.status_code == 200
    assert [lk["clusterName"] for lk in clusters(client)[0]["obLinks"]] == ["hooray"]
    assert (
        client.delete(f"/api/v2/obproxy/clusters/{cid}/obLinks/second", headers=ADMIN).status_code
        == 404
    )
    assert client.delete(f"/api/v2/ob/clusters/{ob_id}", headers=ADMIN).status_code == 200


def test_rs_list_cluster_refuses_links(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    create(client, workMode="RS_LIST")
    cid = clusters(client)[0]["id"]
    r = client.post(
        f"/api/v2/obproxy/clusters/{cid}/obLinks/batchAdd",
        headers=ADMIN,
        json=[{"clusterName": "second", "obClusterId": 2}],
    )
    # Bad input for an RS_LIST cluster, refused as create refuses it (not a task's state).
    assert r.status_code == 400 and "RS_LIST" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == 1003
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}/obLinks/hooray", headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["code"] == 1003
    assert "RS_LIST" in r.json()["error"]["message"]
    assert len(clusters(client)[0]["obLinks"]) == 1


def test_the_last_link_cannot_be_removed(client):
    import_ob(client)
    create(client)
    cid = clusters(client)[0]["id"]
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}/obLinks/hooray", headers=ADMIN)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003
    assert "at least one" in r.json()["error"]["message"]
    assert [lk["clusterName"] for lk in clusters(client)[0]["obLinks"]] == ["hooray"]


def link_names(client, cluster_id: int | None = None) -> list[str]:
    shown = clusters(client)
    cluster = shown[0] if cluster_id is None else next(c for c in shown if c["id"] == cluster_id)
    return [lk["clusterName"] for lk in cluster["obLinks"]]


def test_added_links_need_the_same_proxyro_credential(client):
    """As a create with hosts and a batchAdd check it: OBProxy has one observer_sys_password
    for every OceanBase cluster behind it. A cluster with no obproxy yet is checked when it
    gets some, as a create without hosts is."""
    import_ob(client)
    import_ob(client, name="bare", ob_cluster_id=2, password=None)
    import_ob(client, name="odd", ob_cluster_id=3, password="Other_pw_1")
    import_ob(client, name="same", ob_cluster_id=4)
    import_ob(client, name="later", ob_cluster_id=5, password=None)
    create(client, name="empty")
    empty = clusters(client)[0]["id"]
    r = client.post(
        f"/api/v2/obproxy/clusters/{empty}/obLinks/batchAdd",
        headers=ADMIN,
        json=[{"clusterName": "later", "obClusterId": 5}],
    )
    assert r.status_code == 200, r.text
    create(client)
    cid = next(c["id"] for c in clusters(client) if c["name"] == "pc1")
    add_obproxy(client, cid, 2883)
    url = f"/api/v2/obproxy/clusters/{cid}/obLinks/batchAdd"
    for name, ob_id, words in (("bare", 2, "no proxyro credential"), ("odd", 3, "different")):
        r = client.post(url, headers=ADMIN, json=[{"clusterName": name, "obClusterId": ob_id}])
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == 1003 and words in r.json()["error"]["message"]
        assert link_names(client, cid) == ["hooray"]
    # All or nothing: a good link with a bad one adds neither.
    both = [{"clusterName": "same", "obClusterId": 4}, {"clusterName": "odd", "obClusterId": 3}]
    assert client.post(url, headers=ADMIN, json=both).status_code == 400
    assert link_names(client, cid) == ["hooray"]
    r = client.post(url, headers=ADMIN, json=[{"clusterName": "same", "obClusterId": 4}])
    assert r.status_code == 200, r.text
    assert link_names(client, cid) == ["hooray", "same"]


def set_task_status(client, task_id: int, status: str) -> None:
    with client.app.state.ctx.db.transaction() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == task_id).values(status=status)
        )


def task_count(client) -> int:
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]
    return int(tasks["page"]["totalElements"])


def test_delete_is_refused_while_a_task_of_the_cluster_runs(client):
    """No engine runs here: the Install obproxy task of a create stays RUNNING."""
    import_ob(client)
    install = create(client).json()["data"]["id"]
    other = create(client, name="pc2").json()["data"]["id"]
    cid = next(c["id"] for c in clusters(client) if c["name"] == "pc1")

    r = client.delete(f"/api/v2/obproxy/clusters/{cid}", headers=ADMIN)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == 4007, error
    assert f"{install} (Install obproxy, RUNNING)" in error["message"]
    assert "cancel them" in error["message"]
    assert str(other) not in error["message"].replace(str(install), "")
    assert sorted(c["name"] for c in clusters(client)) == ["pc1", "pc2"]
    assert task_count(client) == 2
    # Ended (FAILED: giving up on it is a delete): deleted, though pc2's task still runs.
    set_task_status(client, install, "FAILED")
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "Offline obproxy"
    # Its Offline task now runs: a second delete is refused instead of starting another.
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == 4007
    assert task_count(client) == 3


BAD_ADDRESSES = ["$(reboot); \n\u0000", "foo bar", "-oProxyCommand=x", "010.0.0.10", "0.0.0.0"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_bad_address_refused_on_create(client, address):
    import_ob(client)
    r = create(client, address=address, port=2883)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003 and "address" in r.json()["error"]["message"]
    assert clusters(client) == []
    assert task_count(client) == 0


def test_patch_checks_address_and_port(client):
    import_ob(client)
    create(client, address="Proxy.Example", port=2883)
    cid = clusters(client)[0]["id"]
    assert clusters(client)[0]["address"] == "proxy.example"  # canonical, as host names
    url = f"/api/v2/obproxy/clusters/{cid}"
    for body in [{"address": a} for a in BAD_ADDRESSES] + [{"port": 0}, {"port": 65536}]:
        r = client.patch(url, headers=ADMIN, json=body)
        assert r.status_code == 400, (body, r.text)
        one = client.get(url, headers=ADMIN).json()["data"]
        assert (one["address"], one["port"]) == ("proxy.example", 2883)
    r = client.patch(url, headers=ADMIN, json={"address": " 198.18.0.77 "})
    assert r.status_code == 200 and r.json()["data"]["address"] == "198.18.0.77"
    r = client.patch(url, headers=ADMIN, json={"address": ""})  # an empty one clears it
    assert r.status_code == 200 and r.json()["data"]["address"] is None


def test_delete_empty_cluster_runs_offline_task(engine_client):
    client = engine_client
    import_ob(client)
    wait_task(client, create(client).json()["data"]["id"])
    cid = clusters(client)[0]["id"]
    r = client.delete(f"/api/v2/obproxy/clusters/{cid}", headers=ADMIN)
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Offline obproxy"
    assert [s["name"] for s in task["subtasks"]] == ["Start node", "Finish node"]
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
    assert clusters(client) == []
    assert (
        client.get("/api/v2/credentials?targetType=OBPROXY", headers=ADMIN).json()["data"][
            "contents"
        ]
        == []
    )


def test_install_task_rollback_forgets_cluster(engine_client):
    """Rolling back a creation task (here after its last step failed) removes the cluster."""
    client = engine_client
    import_ob(client)
    task = create(client).json()["data"]
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
    assert len(clusters(client)) == 1
    r = client.post(f"/api/v2/tasks/instances/{task['id']}/rollback", headers=ADMIN)
    # A finished task cannot be rolled back: OCP allows rollback of failed tasks only.
    assert r.status_code == 409 and r.json()["error"]["code"] == 4007
    assert len(clusters(client)) == 1


def test_parameter_info(client):
    r = client.get("/api/v2/obproxy/parameterInfo?name=syslog_level", headers=ADMIN)
    assert {i["name"] for i in r.json()["data"]["contents"]} == {"syslog_level"}
    r = client.get("/api/v2/obproxy/parameterInfo?name=syslog_level&version=4.2.3.0", headers=ADMIN)
    (info,) = r.json()["data"]["contents"]
    assert info["version"] == "4.2.3.0"
    assert info["name"] == "syslog_level" and info["type"] == "STRING"
    assert info.keys() >= PARAMETER_INFO_KEYS
    everything = client.get("/api/v2/obproxy/parameterInfo?version=4.2.3.0", headers=ADMIN).json()[
        "data"
    ]["contents"]
    assert len(everything) > 50
    assert client.get("/api/v2/obproxy/parameterInfo?version=abc", headers=ADMIN).status_code == 400
    assert json.dumps(everything).count("observer_sys_password") >= 1


@pytest.mark.parametrize("links", [{"obLinks": []}, {}])
def test_a_config_url_cluster_may_start_without_an_ob_cluster(client, links):
    """OCP's guide: the connectable cluster "is optional when Startup Method is ConfigUrl"."""
    body = {"name": "pc_alone", "workMode": "CONFIG_URL", **links}
    r = client.post("/api/v2/obproxy/clusters", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    (cluster,) = clusters(client)
    assert cluster["obLinks"] == [] and cluster["configUrl"].endswith("pc_alone")
    r = client.post("/api/v2/obproxy/clusters", headers=ADMIN, json={"name": "pc_default"})
    assert r.status_code == 200, r.text  # workMode defaults to CONFIG_URL


def test_an_rs_list_cluster_shows_no_config_url(client):
    import_ob(client)
    assert create(client, name="pc_rs", workMode="RS_LIST").status_code == 200
    assert create(client, name="pc_url").status_code == 200
    shown = {c["name"]: c["configUrl"] for c in clusters(client)}
    assert shown["pc_rs"] is None and shown["pc_url"].endswith("pc_url")
    one = next(c for c in clusters(client) if c["name"] == "pc_rs")
    got = client.get(f"/api/v2/obproxy/clusters/{one['id']}", headers=ADMIN).json()["data"]
    assert got["configUrl"] is None
