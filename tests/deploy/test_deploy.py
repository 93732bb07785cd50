"""obfleet deploys OBProxy (the stand-in) on real test hosts over SSH: cluster create in RS_LIST
and CONFIG_URL mode, batchAdd, a busy port, a rollback; no secret in any answer or log."""

from __future__ import annotations

from typing import Any

import pytest

from obfleet.obproxy.configurl import config_url
from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOME,
    HOST_CHAIN,
    OB_CLUSTER,
    PROXYRO_PASSWORD,
    ROOT_SERVER,
    RPM_NAME,
    SQL_PORT,
    Fleet,
    assert_clean,
    assert_no_secrets,
    obproxy_argv,
    obproxy_processes,
    proxyconfig,
    sha1hex,
)
from tests.support.sshkeys import PASSPHRASE
from tests.support.testhosts import NetnsHost

pytestmark = pytest.mark.hosts

OB_LINK = {"clusterName": OB_CLUSTER, "obClusterId": 1, "username": "proxyro"}
STARTUP = [{"name": "enable_strict_kernel_release", "value": "false"}]
RUNTIME = [
    {"name": "syslog_level", "value": "WARN"},
    {"name": "proxy_mem_limited", "value": "1GB"},
]
RS_LIST = f"{ROOT_SERVER[0]}:{ROOT_SERVER[2]}"


def create(
    fleet: Fleet,
    name: str,
    mode: str,
    hosts: list[NetnsHost],
    links: list[dict[str, Any]] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """Create the cluster on `hosts`; `extensions` are further body fields (runUser, ...)."""
    return fleet.post(  # type: ignore[no-any-return]
        "/api/v2/obproxy/clusters",
        {
            **extensions,
            "name": name,
            "workMode": mode,
            "obLinks": [OB_LINK] if links is None else links,
            "obproxyInstallParam": {
                "hostIds": [fleet.host_id(h) for h in hosts],
                "sqlPort": SQL_PORT,
                "exportPort": EXPORTER_PORT,
                "version": RPM_NAME,
            },
            "startupParameters": STARTUP,
            "parameters": RUNTIME,
        },
    )


def cluster_named(fleet: Fleet, name: str) -> dict[str, Any]:
    (cluster,) = fleet.get(f"/api/v2/obproxy/clusters?name={name}")["contents"]
    return cluster  # type: ignore[no-any-return]


def expected_argv(name: str, password: str, *upstream: str, url: str = "") -> list[str]:
    options = "enable_strict_kernel_release=false,enable_metadb_used=false,"
    options += "skip_proxy_sys_private_check=true,"
    if url:
        options += f"obproxy_config_server_url={url},"
    options += f"obproxy_sys_password={sha1hex(password)}"
    return [
        "./bin/obproxy",
        *("-p", str(SQL_PORT), "-l", str(EXPORTER_PORT), "-n", name, "-o", options),
        *upstream,
    ]


def assert_runs(host: NetnsHost, password: str, argv: list[str]) -> dict[str, str]:
    """The stand-in runs on host with argv, root@proxysys logs in, and the proxyro password and
    runtime parameters are set; returns its proxyconfig."""
    assert obproxy_argv(host) == argv
    config = proxyconfig(host, password)
    assert config["observer_sys_password"] == sha1hex(PROXYRO_PASSWORD)
    assert (config["syslog_level"], config["proxy_mem_limited"]) == ("WARN", "1GB")
    assert config["enable_strict_kernel_release"] == "false"
    return config


def assert_recorded(fleet: Fleet, name: str, hosts: list[NetnsHost]) -> None:
    servers = cluster_named(fleet, name)["obproxies"]
    assert sorted(s["ip"] for s in servers) == sorted(h.ip for h in hosts)
    for server in servers:
        assert (server["status"], server["operateStatus"]) == ("RUNNING", "NORMAL")
        assert (server["sqlPort"], server["exporterPort"]) == (SQL_PORT, EXPORTER_PORT)
        assert server["version"] == "4.2.3.0-3" and server["parameterVersion"] == 1


def secrets_of(fleet: Fleet, name: str) -> list[str]:
    proxysys = fleet.proxysys_password(name)
    return [proxysys, sha1hex(proxysys), PROXYRO_PASSWORD, sha1hex(PROXYRO_PASSWORD)]


def test_rs_list_cluster_on_three_hosts_then_batch_add(fleet: Fleet) -> None:
    first, added = fleet.hosts[:3], fleet.hosts[3]
    task = create(fleet, "pc_rs", "RS_LIST", first)
    names = [s["name"] for s in task["subtasks"]]
    assert names == ["Prepare obproxy install", *HOST_CHAIN * 3, "Finish node"]
    assert sorted({s["parallelIdx"] for s in task["subtasks"]}) == [-1, 0, 1, 2]
    done = fleet.succeeded(task["id"])

    password = fleet.proxysys_password("pc_rs")
    argv = expected_argv("pc_rs", password, "-r", RS_LIST, "-c", OB_CLUSTER)
    for host in first:
        config = assert_runs(host, password, argv)
        assert (config["rootservice_list"], config["app_name"]) == (RS_LIST, "pc_rs")
    assert_recorded(fleet, "pc_rs", first)

    cluster_id = cluster_named(fleet, "pc_rs")["id"]
    answer = fleet.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/batchAdd",
        {
            "hostIds": [fleet.host_id(added)],
            "sqlPort": SQL_PORT,
            "exporterPort": EXPORTER_PORT,
            "version": RPM_NAME,
        },
    )
    (add_task,) = answer["contents"]
    assert add_task["name"] == "Install obproxy" and add_task["hostId"] == fleet.host_id(added)
    assert [s["name"] for s in add_task["subtasks"]] == [
        "Prepare obproxy install",
        *HOST_CHAIN,
        "Finish node",
    ]
    added_done = fleet.succeeded(add_task["id"])
    assert_runs(added, password, argv)
    assert_recorded(fleet, "pc_rs", fleet.hosts)

    logs = [*fleet.logs(done).values(), *fleet.logs(added_done).values()]
    assert all(logs), "every subtask logs what it did"
    answers = [
        str(x) for x in (task, done, answer, added_done, fleet.get("/api/v2/obproxy/clusters"))
    ]
    assert_no_secrets(logs + answers, secrets_of(fleet, "pc_rs"))


@pytest.mark.parametrize("fleet", [PASSPHRASE], indirect=True)
def test_hosts_reached_with_a_passphrase_protected_key_get_obproxy(fleet: Fleet) -> None:
    """ssh-keygen's default format under a passphrase (bcrypt KDF): hosts added and deployed."""
    host = fleet.hosts[0]
    fleet.succeeded(create(fleet, "pc_key", "RS_LIST", [host])["id"])
    password = fleet.proxysys_password("pc_key")
    assert_runs(host, password, expected_argv("pc_key", password, "-r", RS_LIST, "-c", OB_CLUSTER))
    assert_recorded(fleet, "pc_key", [host])


def test_config_url_cluster_reads_its_clusters_from_obfleet(fleet: Fleet) -> None:
    hosts = fleet.hosts[:3]
    task = create(fleet, "pc_url", "CONFIG_URL", hosts)
    done = fleet.succeeded(task["id"])

    password = fleet.proxysys_password("pc_url")
    url = config_url(fleet.server.url, "pc_url")
    assert cluster_named(fleet, "pc_url")["configUrl"] == url
    for host in hosts:
        config = assert_runs(host, password, expected_argv("pc_url", password, url=url))
        assert config["obproxy_config_server_url"] == url
        assert config["config_server_rslist"] == f"{OB_CLUSTER}:{RS_LIST}"
        assert config["rootservice_list"] == ""
    assert_recorded(fleet, "pc_url", hosts)
    assert_no_secrets(
        [*fleet.logs(done).values(), str(task), str(done)], secrets_of(fleet, "pc_url")
    )


def test_config_url_cluster_without_a_link_starts_then_takes_one(fleet: Fleet) -> None:
    """OCP's guide: the connectable cluster "is optional when Startup Method is ConfigUrl". The
    obproxy starts on obfleet's config server URL with no cluster to read and no proxyro
    password; once a cluster is linked, a restart gives it both."""
    host = fleet.hosts[0]
    task = create(fleet, "pc_nolink", "CONFIG_URL", [host], links=[])
    done = fleet.succeeded(task["id"])
    password = fleet.proxysys_password("pc_nolink")
    url = config_url(fleet.server.url, "pc_nolink")
    cluster = cluster_named(fleet, "pc_nolink")
    assert (cluster["configUrl"], cluster["obLinks"]) == (url, [])
    assert obproxy_argv(host) == expected_argv("pc_nolink", password, url=url)
    config = proxyconfig(host, password)
    assert (config["config_server_rslist"], config["observer_sys_password"]) == ("", "")
    assert any("no OceanBase cluster yet" in log for log in fleet.logs(done).values())

    fleet.post(f"/api/v2/obproxy/clusters/{cluster['id']}/obLinks/batchAdd", [OB_LINK])
    (obproxy,) = cluster["obproxies"]
    restart = f"/api/v2/obproxy/clusters/{cluster['id']}/obproxies/{obproxy['id']}/restart"
    fleet.succeeded(fleet.post(restart)["id"])
    config = proxyconfig(host, password)
    assert config["config_server_rslist"] == f"{OB_CLUSTER}:{RS_LIST}"
    assert config["observer_sys_password"] == sha1hex(PROXYRO_PASSWORD)


def test_busy_port_fails_the_check_and_a_retry_after_freeing_it_succeeds(fleet: Fleet) -> None:
    host = fleet.hosts[0]
    with host.occupy_port(EXPORTER_PORT):
        task = create(fleet, "pc_busy", "RS_LIST", [host])
        failed = fleet.wait(task["id"])
        assert failed["status"] == "FAILED"
        by_name = {s["name"]: s for s in failed["subtasks"]}
        check = by_name["Check if process not exist"]
        assert check["status"] == "FAILED"
        assert by_name["Install rpm by package and version"]["status"] == "PENDING"
        log = fleet.logs(failed)[check["id"]]
        assert f"CHECK FAILED: port {EXPORTER_PORT} on {host.ip} is already in use by pid" in log
        assert not host.file_exists(HOME) and obproxy_processes(host) == []
    retried = fleet.post(f"/api/v2/tasks/instances/{task['id']}/retry")
    assert retried["operation"] == "RETRY"
    fleet.succeeded(task["id"])
    password = fleet.proxysys_password("pc_busy")
    assert_runs(host, password, expected_argv("pc_busy", password, "-r", RS_LIST, "-c", OB_CLUSTER))


def test_rollback_of_a_failed_install_leaves_every_host_clean(fleet: Fleet) -> None:
    hosts = fleet.hosts[:3]
    hosts[2].kill_sshd()  # that branch fails at its first SSH step; the others install
    task = create(fleet, "pc_rollback", "RS_LIST", hosts)
    failed = fleet.wait(task["id"])
    assert failed["status"] == "FAILED"
    assert {s["name"] for s in failed["subtasks"] if s["status"] == "FAILED"} == {
        "Check if process not exist"
    }
    for host in hosts[:2]:
        assert obproxy_processes(host) and host.file_exists(f"{HOME}/bin/obproxy")
    secrets = secrets_of(fleet, "pc_rollback")

    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    rolled_back = fleet.wait(task["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    for host in hosts:
        assert_clean(host)
    assert fleet.get("/api/v2/obproxy/clusters")["contents"] == []
    assert fleet.get("/api/v2/credentials?targetType=OBPROXY")["contents"] == []
    assert_no_secrets([*fleet.logs(rolled_back).values(), str(rolled_back)], secrets)
