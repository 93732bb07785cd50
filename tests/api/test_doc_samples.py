"""Every documented endpoint obfleet implements, called on one real `obfleet serve` over HTTP:
the JSON keys of its answer (the envelope, `data`, the items of `contents`, nested objects such
as a task's subtasks and context, a cluster's obLinks, obproxies and topo, `page`) against the
keys of the `Sample response` on its page of OCP's API docs (vendored in tests/api/samples/,
see doc_samples.py).

A key of the sample that obfleet does not produce fails the row, unless the row names it in
`missing` with the reason (a field of an OCP feature obfleet does not have); a key obfleet adds
fails it too, unless named in `extra` (the appendix's fields that a sample leaves out, obfleet's
documented extensions). Both lists must stay true: a named key that stops being missing or
extra fails the row, so the lists never outlive what they excuse.

Table-driven: an endpoint is one Row (its page, method, path, body). `{name}` fields in a path
or body are things the Fleet sets up on first use (`fresh_*` ones anew for each row, for the
calls that use them up: a task to retry, a host to delete). UNDOCUMENTED_ROUTES lists the
routes that have no page (extensions), so that a route added without a row is noticed.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from obfleet.api.app import ROUTERS
from obfleet.store.db import Database
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.timefmt import utcnow
from tests.api.doc_samples import API, DOCS, SAMPLES, key_paths, parse_page, vendored
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.dbfixtures import MigratedDatabase
from tests.server import ServerProcess, free_port, listener_on_fresh_port
from tests.standin.rpm import build_standin_rpm

HAS_RPMBUILD = shutil.which("rpmbuild") is not None

# --- what the rows excuse ---------------------------------------------------------------------


def under(prefix: str, keys: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}.{key}" if prefix else key: why for key, why in keys.items()}


APPENDIX = "a field of the appendix's TaskInstance / SubtaskInstance that this sample leaves out"
TASK_FIELDS = {
    key: APPENDIX
    for key in (
        "clusterId",
        "tenantId",
        "hostId",
        "createTime",
        "finishTime",
        "prohibitRollback",
        "context",
        "context.parallel",
        "context.parallelIdx",
        "context.stringMap",
        "context.listMap",
        "subtasks[].className",
        "subtasks[].context",
        "subtasks[].context.parallel",
        "subtasks[].context.parallelIdx",
        "subtasks[].context.stringMap",
        "subtasks[].context.listMap",
        "subtasks[].createTime",
        "subtasks[].startTime",
        "subtasks[].finishTime",
        "subtasks[].executor",
    )
} | {
    "taskDefinitionId": "WrappedTaskInstance's (the task detail page's table and sample)",
    "cluster": "WrappedTaskInstance's (the task detail page's table); null: no OB cluster task",
    "tenant": "WrappedTaskInstance's (the task detail page's table); null: obfleet has no tenants",
    "subtasks[].branchLabel": "extension: what the subtask's branch acts on, as its flow named it",
}
SUBTASK_FIELDS = {
    key.removeprefix("subtasks[]."): why
    for key, why in TASK_FIELDS.items()
    if key.startswith("subtasks[].")
}


def task_extra(page: str, prefix: str, fields: Mapping[str, str] = TASK_FIELDS) -> dict[str, str]:
    """The task fields obfleet gives that the page's sample leaves out, under `prefix`."""
    shown = key_paths(vendored(page))
    return {path: why for path, why in under(prefix, fields).items() if path not in shown}


NO_DATA = {"data": "DESIGN's envelope always has data (null here); OCP's sample leaves it out"}
OB_LINKS = {
    f"obLinks[].{key}": "the ObLink fields of the page's table (the sample's obLinks is empty)"
    for key in (
        "clusterId",
        "clusterName",
        "username",
        "status",
        "connections",
        "obClusterId",
        "clusterType",
    )
}
CLUSTER_EXTENSIONS = {
    **OB_LINKS,
    "installPath": "extension: where the cluster's obproxies live (<installPath>/obproxy-<v>)",
    "runUser": "extension: the user the cluster's obproxies run as",
    "proxysysCredentialId": "extension: the root@proxysys password's credential",
}
HOST_EXTENSIONS = {
    "credentialId": "extension: the HOST credential obfleet logs in with",
    "hostKeyFingerprint": "extension: the SSH host key pinned at first contact",
}


@dataclass(frozen=True)
class Row:
    page: str  # tests/api/samples/<page>.json
    method: str
    path: str
    body: Any = None  # JSON; str values "{name}" are set up like path fields
    missing: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)
    upload: str | None = None  # a multipart upload of this fleet file instead of a JSON body
    needs_rpm: bool = False
    setup: tuple[str, ...] = ()  # fields set up first, for what a list must show

    @property
    def id(self) -> str:
        return f"{self.method} {self.page.split('/')[-1]}"


TASKS = "1000.task-management-interface"
HOSTS = "500.host-module"
PACKAGES = "600.software-package-interface"
OBPROXY = "700.api-obproxy-management"


def task_row(page: str, method: str, path: str, prefix: str = "data", **more: Any) -> Row:
    """A row whose answer is a task (`prefix` "data.contents[]": a list of tasks)."""
    extra = task_extra(page, prefix) | dict(more.pop("extra", {}))
    return Row(page, method, path, extra=extra, **more)


ROWS: list[Row] = [
    Row(
        f"{TASKS}/100.query-the-task-list",
        "GET",
        "/api/v2/tasks/instances?page=1&size=10",
        setup=("task",),
        missing={
            **{
                f"data.contents[].cluster.{key}": "null: obfleet runs no task on an OB cluster"
                for key in ("id", "name", "obClusterId", "type")
            },
            **{
                f"data.contents[].tenant.{key}": "null: obfleet has no tenants"
                for key in ("id", "name", "obTenantId", "mode")
            },
        },
        extra=under(
            "data.contents[]",
            {
                "type": APPENDIX,
                "operation": APPENDIX,
                "hostId": APPENDIX,
                "createTime": APPENDIX,
            },
        ),
    ),
    task_row(f"{TASKS}/200.query-task-details", "GET", "/api/v2/tasks/instances/{task}"),
    task_row(
        f"{TASKS}/300.retry-a-task", "POST", "/api/v2/tasks/instances/{fresh_failed_task}/retry"
    ),
    task_row(
        f"{TASKS}/400.rollback-task",
        "POST",
        "/api/v2/tasks/instances/{fresh_failed_task}/rollback",
    ),
    Row(
        f"{TASKS}/500.query-subtask-instance-logs",
        "GET",
        "/api/v2/tasks/instances/{task}/subtasks/{subtask}/log",
    ),
    Row(
        f"{TASKS}/600.retry-a-subtask",
        "POST",
        "/api/v2/tasks/instances/{fresh_failed_task}/subtasks/{fresh_failed_subtask}/retry",
        extra=task_extra(f"{TASKS}/600.retry-a-subtask", "data", SUBTASK_FIELDS),
    ),
    Row(
        f"{TASKS}/700.skip-a-subtask",
        "POST",
        "/api/v2/tasks/instances/{fresh_failed_task}/subtasks/{fresh_failed_subtask}/skip",
        extra=NO_DATA,
    ),
    Row(
        f"{TASKS}/800.cancel-a-subtask",
        "POST",
        "/api/v2/tasks/instances/{fresh_running_task}/subtasks/{fresh_running_subtask}/cancel",
        extra=NO_DATA,
    ),
    Row(
        "1400.other/100.query-the-basic-information-of-an-ocp-application",
        "GET",
        "/api/v2/info",
        extra={"buildPythonVersion": "extension: obfleet runs on Python, not Java"},
    ),
    Row(
        "300.cluster-information/100.query-the-cluster-list",
        "GET",
        "/api/v2/ob/clusters",
        setup=("hooray",),
        missing={
            **{
                f"data.contents[].alarmSummaries[].{key}": "obfleet raises no alarms: always []"
                for key in ("count", "level", "linkDataUrl", "linkUrl")
            },
            **{
                f"data.contents[].zones[].{key}": "obfleet records a cluster's root servers, "
                "not its zones: always []"
                for key in (
                    "idcId",
                    "idcName",
                    "innerStatus",
                    "name",
                    "operateStatus",
                    "regionName",
                    "serverCount",
                    "servers",
                    "status",
                )
            },
        },
        extra={
            "data.contents[].proxyroCredentialId": "extension: the proxyro password's credential",
            "data.contents[].updateTime": "the ObCluster field of the page's table",
        },
    ),
    Row(
        "300.cluster-information/2400.query-servers",
        "GET",
        "/api/v2/ob/clusters/{hooray_id}/servers",
    ),
    Row(
        f"{HOSTS}/1300.query-host-lists",
        "GET",
        "/api/v2/compute/hosts?page=1&size=10",
        setup=("host",),
        extra=under("data.contents[]", HOST_EXTENSIONS),
    ),
    Row(
        f"{HOSTS}/1400.query-host-details",
        "GET",
        "/api/v2/compute/hosts/{host}",
        extra=under("data", HOST_EXTENSIONS),
    ),
    task_row(
        f"{HOSTS}/1500.add-hosts-in-batches",
        "POST",
        "/api/v2/compute/hosts/batchCreate",
        "data.contents[]",
        body={  # the page's sample request, on a port where no sshd answers
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": "{fresh_closed_port}",
            "typeId": 1,
            "idcId": 1000002,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": "{credential}",
        },
    ),
    Row(f"{HOSTS}/1600.delete-host", "DELETE", "/api/v2/compute/hosts/{fresh_host}", extra=NO_DATA),
    Row(
        f"{HOSTS}/1700.delete-multiple-hosts",
        "POST",
        "/api/v2/compute/hosts/batchDelete",
        {"hostIdList": ["{fresh_host}"]},
        extra=NO_DATA,
    ),
    Row(
        f"{PACKAGES}/100.query-the-list-of-software-packages",
        "GET",
        "/api/v2/software-packages?page=1&size=10",
        needs_rpm=True,
        setup=("package", "cluster"),  # the cluster's obproxy is recorded on the package
        extra=under(
            "data.contents[].installationDataList[]",
            {
                key: "obfleet's item (the sample's list is empty, OCP documents no item)"
                for key in (
                    "obproxyClusterId",
                    "obproxyId",
                    "hostId",
                    "ip",
                    "sqlPort",
                    "installPath",
                )
            },
        ),
    ),
    Row(
        f"{PACKAGES}/200.api-upload-a-software-package",
        "POST",
        "/api/v2/software-packages",
        upload="fresh_rpm",
        needs_rpm=True,
        extra={
            "data.createTime": "a SoftwarePackageMeta field, as in the list page's sample",
            "data.deletable": "a SoftwarePackageMeta field, as in the list page's sample",
            "data.installationDataList": "a SoftwarePackageMeta field, as in the list page's "
            "sample",
        },
    ),
    Row(
        f"{PACKAGES}/300.api-delete-software-packages",
        "DELETE",
        "/api/v2/software-packages/{fresh_package}",
        needs_rpm=True,
        extra=NO_DATA,
    ),
    task_row(
        f"{OBPROXY}/100.api-create-an-obproxy-cluster",
        "POST",
        "/api/v2/obproxy/clusters",
        body={  # the page's own sample request, under a new name
            "obproxyInstallParam": {"hostIds": []},
            "obLinks": [
                {"clusterName": "hooray", "clusterId": 1, "username": "proxyro", "obClusterId": 1}
            ],
            "name": "{fresh_name}",
            "address": "foo.bar",
            "port": 2883,
            "workMode": "CONFIG_URL",
        },
        setup=("hooray",),
    ),
    task_row(
        f"{OBPROXY}/200.api-delete-obproxy-cluster",
        "DELETE",
        "/api/v2/obproxy/clusters/{fresh_cluster}",
    ),
    Row(
        f"{OBPROXY}/300.queries-the-obproxy-cluster-list",
        "GET",
        "/api/v2/obproxy/clusters",
        setup=("cluster",),
        extra=under("data.contents[]", CLUSTER_EXTENSIONS),
    ),
    Row(
        f"{OBPROXY}/400.querying-details-about-an-obproxy-cluster",
        "GET",
        "/api/v2/obproxy/clusters/{cluster}",
        extra=under("data", CLUSTER_EXTENSIONS),
    ),
    Row(
        f"{OBPROXY}/500.update-obproxy-cluster-configuration",
        "PATCH",
        "/api/v2/obproxy/clusters/{cluster}",
        {"address": "foo.bar", "port": 2883},
        extra=under("data", CLUSTER_EXTENSIONS),
    ),
    task_row(
        f"{OBPROXY}/600.api-add-obproxy",
        "POST",
        "/api/v2/obproxy/clusters/{cluster}/obproxies/batchAdd",
        "data.contents[]",
        body={
            "hostIds": ["{fresh_online_host}"],
            "sqlPort": 2883,
            "exporterPort": 2884,
            "version": "{package_file}",
        },
        needs_rpm=True,
    ),
    task_row(
        f"{OBPROXY}/700.api-obproxy",
        "POST",
        "/api/v2/obproxy/clusters/{cluster}/takeOver",
        "data.contents[]",
        body={"hosts": [{"hostId": "{fresh_online_host}", "sqlPort": 2883}]},
    ),
    task_row(
        f"{OBPROXY}/800.api-delete-obproxy",
        "DELETE",
        "/api/v2/obproxy/clusters/{cluster}/obproxies/{fresh_obproxy}",
    ),
    task_row(
        f"{OBPROXY}/900.api-restart-obproxy",
        "POST",
        "/api/v2/obproxy/clusters/{cluster}/obproxies/{fresh_obproxy}/restart",
    ),
    task_row(
        f"{OBPROXY}/1000.api-upgrade-obproxy",
        "POST",
        "/api/v2/obproxy/clusters/{cluster}/obproxies/{fresh_obproxy}/upgrade",
        body={"shortRpmName": "{newer_package_short_name}"},
        needs_rpm=True,
    ),
    Row(
        f"{OBPROXY}/1100.add-the-cluster-that-can-connect-to-oceanbase-to-obproxy",
        "POST",
        "/api/v2/obproxy/clusters/{cluster}/obLinks/batchAdd",
        [{"clusterName": "{fresh_ob_name}", "obClusterId": "{fresh_ob_id}", "username": "proxyro"}],
        extra=NO_DATA,
    ),
    Row(
        f"{OBPROXY}/1200.obproxy-cluster-delete-an-oceanbase-cluster-that-can-connect-to",
        "DELETE",
        "/api/v2/obproxy/clusters/{cluster}/obLinks/{fresh_link_name}",
        extra=NO_DATA,
    ),
    Row(
        f"{OBPROXY}/1300.query-the-metadata-of-an-obproxy-parameter",
        "GET",
        "/api/v2/obproxy/parameterInfo",
        extra={
            "data.contents[].versions": "extension: the OBProxy releases whose config header "
            "defines the parameter so",
            "data.contents[].unit": "extension: what a bare number means (s, MB, us...)",
        },
    ),
    Row(
        f"{OBPROXY}/1400.queries-the-obproxy-cluster-parameters",
        "GET",
        "/api/v2/obproxy/clusters/{cluster}/parameters",
        extra={
            "data.contents[].values[].error": "extension: why an obproxy's own value could not "
            "be read (here: the recorded obproxy has nothing listening)",
            "data.contents[].drift": "extension: whether an obproxy shows another value than "
            "valueString",
        },
    ),
]

# Pages with a sample whose endpoint obfleet does not have; a route added for one fails
# test_every_route_has_a_row until its row is added.
NOT_IMPLEMENTED: dict[str, str] = {}

# Routes without a page of their own: obfleet's extensions, the plain-text "other" endpoints
# (tested below, their samples are not JSON) and the config server (tests/configserver/).
UNDOCUMENTED_ROUTES = {
    "GET /api/v2/time": "plain text; test_plain_text_endpoints",
    "GET /api/v2/status": "plain text; test_plain_text_endpoints",
    "GET /api/status": "plain text; test_plain_text_endpoints",
    "GET /services": "config server (extension), tests/configserver/",
    "POST /services": "config server (extension), tests/configserver/",
    "DELETE /services": "config server (extension), tests/configserver/",
    "POST /api/v2/ob/clusters/import": "extension",
    "GET /metrics": "Prometheus text (extension), tests/observe/test_metrics.py",
    "GET /api/v2/obproxy/prometheus-targets": "http_sd (extension), tests/observe/test_targets.py",
    "GET /api/v2/audit-events": "extension, tests/observe/test_audit.py",
    "GET /api/v2/ob/clusters/{cluster_id}": "extension",
    "DELETE /api/v2/ob/clusters/{cluster_id}": "extension",
    "PATCH /api/v2/ob/clusters/{cluster_id}": "extension, tests/api/test_ob_clusters.py",
    "POST /api/v2/credentials": "extension (password box)",
    "GET /api/v2/credentials": "extension (password box)",
    "GET /api/v2/credentials/{credential_id}": "extension (password box)",
    "PATCH /api/v2/credentials/{credential_id}": "extension (password box)",
    "DELETE /api/v2/credentials/{credential_id}": "extension (password box)",
    "GET /api/v2/files/sys-package/{file_name}": "the downloadUrl of a package (a file)",
    "GET /api/v2/tasks/instances/{taskInstanceId}/events": "extension (Server-Sent Events)",
    "PUT /api/v2/obproxy/clusters/{cluster_id}/parameters": "extension (OCP's UI only)",
    "POST /api/v2/obproxy/clusters/{cluster_id}/changePassword": "extension (OCP's UI only)",
    "POST /api/v2/credentials/{credential_id}/reveal": "extension (password box)",
    "POST /api/v2/compute/hosts/{host_id}/prepare": "extension, tests/api/test_prepare_again.py",
}


# --- the fleet ---------------------------------------------------------------------------------


class Fleet:
    """One real `obfleet serve` and the things the rows need, set up on first use."""

    def __init__(self, api: httpx.Client, db: Database, rpm_dir: Path) -> None:
        self.api = api
        self.db = db
        self.rpm_dir = rpm_dir
        self.shared: dict[str, Any] = {}
        self.counter = itertools.count(1)
        self.held: list[socket.socket] = []

    # HTTP

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        r = self.api.request(method, path, json=body)
        assert r.status_code == 200 and r.json()["successful"], f"{method} {path}: {r.text}"
        return r.json().get("data")

    def wait(self, task_id: int, done: Callable[[dict[str, Any]], bool], what: str) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            task = self.ok("GET", f"/api/v2/tasks/instances/{task_id}")
            if done(task):
                return dict(task)
            time.sleep(0.05)
        raise AssertionError(f"task {task_id}: {what} not reached in 60 s: {task}")

    # things shared by the rows

    def get(self, name: str, fresh: dict[str, Any]) -> Any:
        if name.startswith("fresh_"):
            if name not in fresh:
                fresh.update(getattr(self, name)())
            return fresh[name]
        if name not in self.shared:
            self.shared.update(getattr(self, name)())
        return self.shared[name]

    def credential(self) -> dict[str, Any]:
        body = {
            "name": "hosts",
            "targetType": "HOST",
            "authType": "PASSWORD",
            "username": "admin",
            "password": "Host_pw_1",
        }
        return {"credential": self.ok("POST", "/api/v2/credentials", body)["id"]}

    def hooray(self) -> dict[str, Any]:
        return {"hooray": "hooray", "hooray_id": self.import_ob("hooray", 1)}

    hooray_id = hooray

    def import_ob(self, name: str, ob_cluster_id: int) -> int:
        body = {
            "name": name,
            "obClusterId": ob_cluster_id,
            "proxyroPassword": "Proxyro_pw_1",
            "rootServers": [
                {"address": f"198.18.0.{ob_cluster_id + 1}:2882", "role": "LEADER", "sqlPort": 2881}
            ],
        }
        return int(self.ok("POST", "/api/v2/ob/clusters/import", body)["id"])

    def fresh_name(self) -> dict[str, Any]:
        return {"fresh_name": f"OBProxy{next(self.counter):03d}"}

    def new_cluster(self, **fields: Any) -> tuple[int, int]:
        """A new OBProxy cluster linked to hooray, and its finished Install obproxy task."""
        self.get("hooray", {})
        name = self.fresh_name()["fresh_name"]
        link = {"clusterName": "hooray", "obClusterId": 1, "username": "proxyro"}
        body = {"name": name, "workMode": "CONFIG_URL", "obLinks": [link], **fields}
        task = self.ok("POST", "/api/v2/obproxy/clusters", body)
        self.wait(task["id"], lambda t: t["status"] == "SUCCESSFUL", "SUCCESSFUL")
        clusters = self.ok("GET", f"/api/v2/obproxy/clusters?name={name}")["contents"]
        return next(c["id"] for c in clusters if c["name"] == name), task["id"]

    def cluster(self) -> dict[str, Any]:
        """The cluster the rows read and change: two parameters, one obproxy recorded on an
        ONLINE host (a record only: nothing answers on its ports)."""
        parameters = [
            {"name": "proxy_info_check_interval", "value": "60s"},
            {"name": "monitor_log_level", "value": "INFO"},
        ]
        cluster_id, task_id = self.new_cluster(parameters=parameters)
        host_id = self.fresh_online_host()["fresh_online_host"]
        self.record_obproxy(cluster_id, host_id)
        subtask = self.ok("GET", f"/api/v2/tasks/instances/{task_id}")["subtasks"][0]["id"]
        return {"cluster": cluster_id, "task": task_id, "subtask": subtask, "host": host_id}

    task = subtask = host = cluster

    def fresh_cluster(self) -> dict[str, Any]:
        return {"fresh_cluster": self.new_cluster()[0]}

    def fresh_ob_name(self) -> dict[str, Any]:
        n = 100 + next(self.counter)
        self.import_ob(f"ob{n}", n)
        return {"fresh_ob_name": f"ob{n}", "fresh_ob_id": n}

    fresh_ob_id = fresh_ob_name

    def fresh_link_name(self) -> dict[str, Any]:
        cluster = self.get("cluster", {})
        ob = self.fresh_ob_name()
        link = {"clusterName": ob["fresh_ob_name"], "obClusterId": ob["fresh_ob_id"]}
        self.ok("POST", f"/api/v2/obproxy/clusters/{cluster}/obLinks/batchAdd", [link])
        return {"fresh_link_name": ob["fresh_ob_name"]}

    def fresh_closed_port(self) -> dict[str, Any]:
        return {"fresh_closed_port": free_port()}

    def new_host(self, port: int) -> tuple[int, int]:
        """A host on 127.0.0.1:port, and its Prepare host task."""
        body = {
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": self.get("credential", {}),
        }
        (task,) = self.ok("POST", "/api/v2/compute/hosts/batchCreate", body)["contents"]
        return task["hostId"], task["id"]

    def fresh_failed_task(self) -> dict[str, Any]:
        """A Prepare host task failed on its first subtask: nothing listens on the SSH port."""
        _, task_id = self.new_host(free_port())
        task = self.wait(task_id, lambda t: t["status"] == "FAILED", "FAILED")
        failed = next(s["id"] for s in task["subtasks"] if s["status"] == "FAILED")
        return {"fresh_failed_task": task_id, "fresh_failed_subtask": failed}

    fresh_failed_subtask = fresh_failed_task

    def fresh_running_task(self) -> dict[str, Any]:
        """A Prepare host task whose first subtask waits for an SSH banner that never comes
        (a listening socket nobody accepts on)."""
        listener = listener_on_fresh_port()
        self.held.append(listener)
        _, task_id = self.new_host(listener.getsockname()[1])

        def running(task: dict[str, Any]) -> bool:
            return task["subtasks"][0]["status"] == "RUNNING"

        task = self.wait(task_id, running, "a RUNNING subtask")
        return {"fresh_running_task": task_id, "fresh_running_subtask": task["subtasks"][0]["id"]}

    fresh_running_subtask = fresh_running_task

    def fresh_host(self) -> dict[str, Any]:
        host_id, task_id = self.new_host(free_port())
        self.wait(task_id, lambda t: t["status"] == "FAILED", "FAILED")
        return {"fresh_host": host_id}

    def fresh_online_host(self) -> dict[str, Any]:
        """A host marked ONLINE in the metadb, as a passed Prepare host leaves it (nothing
        answers SSH on it: the tasks the rows start on it fail later, after their answer)."""
        host_id = self.fresh_host()["fresh_host"]
        with self.db.transaction() as session:
            host = session.get(Host, host_id)
            assert host is not None
            host.status = "ONLINE"
            host.architecture = "x86_64"
            host.operating_system = "CentOS Linux"
            host.operating_system_release = "7"
        return {"fresh_online_host": host_id}

    def record_obproxy(self, cluster_id: int, host_id: int) -> int:
        package = self.get("package", {}) if HAS_RPMBUILD else None
        with self.db.transaction() as session:
            server = ObproxyServer(
                cluster_id=cluster_id,
                host_id=host_id,
                package_id=package,
                ip="127.0.0.1",
                sql_port=free_port(),
                exporter_port=free_port(),
                version="4.2.3.0-3",
                install_path="/home/admin/obproxy-4.2.3.0",
                status="RUNNING",
                operate_status="NORMAL",
                parameter_version=1,
                architecture="x86_64",
                last_active_time=utcnow(),
            )
            session.add(server)
            session.flush()
            return server.id

    def fresh_obproxy(self) -> dict[str, Any]:
        host_id = self.fresh_online_host()["fresh_online_host"]
        return {"fresh_obproxy": self.record_obproxy(self.get("cluster", {}), host_id)}

    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as f:
            r = self.api.post(
                "/api/v2/software-packages", files={"file": (path.name, f, "application/x-rpm")}
            )
        assert r.status_code == 200, r.text
        return dict(r.json()["data"])

    def package(self) -> dict[str, Any]:
        data = self.upload(build_standin_rpm(self.rpm_dir, version="4.2.3.0", release="3.el7"))
        return {"package": data["id"], "package_file": data["fileName"]}

    package_file = package

    def newer_package_short_name(self) -> dict[str, Any]:
        data = self.upload(build_standin_rpm(self.rpm_dir, version="4.3.0.0", release="5.el7"))
        short = f"{data['name']}-{data['version']}-{data['buildNumber']}"
        return {"newer_package_short_name": short}

    def fresh_rpm(self) -> dict[str, Any]:
        n = next(self.counter)
        return {"fresh_rpm": build_standin_rpm(self.rpm_dir, version=f"1.{n}.0", release="1.el7")}

    def fresh_package(self) -> dict[str, Any]:
        return {"fresh_package": self.upload(self.fresh_rpm()["fresh_rpm"])["id"]}


class Fields(dict[str, Any]):
    """str.format_map's mapping: each field set up by the fleet on first use."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self.fresh: dict[str, Any] = {}

    def __missing__(self, name: str) -> Any:
        return self.fleet.get(name, self.fresh)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
            return self[value[1:-1]]
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, server_database: MigratedDatabase | None
) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("doc-samples")
    url = f"sqlite:///{tmp / 'metadb.sqlite'}"
    if server_database:
        server_database.reset()
        url = server_database.url
    server = ServerProcess(tmp / "data", database_url=url)
    server.env.update(
        {
            "OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "OBFLEET_ADVERTISE_URL": server.url,
            "OBFLEET_SSH_TIMEOUT": "120",  # the held port keeps its subtask RUNNING that long
        }
    )
    db = Database(url)
    with server, httpx.Client(base_url=server.url, headers=ADMIN, timeout=60) as api:
        fleet = Fleet(api, db, tmp / "rpms")
        yield fleet
        for listener in fleet.held:
            listener.close()
    db.dispose()


# --- the tests ---------------------------------------------------------------------------------


def _call(fleet: Fleet, row: Row) -> httpx.Response:
    fields = Fields(fleet)
    for name in row.setup:
        fleet.get(name, fields.fresh)
    path = row.path.format_map(fields)
    if row.upload:
        rpm = Path(fields[row.upload])
        with rpm.open("rb") as f:
            return fleet.api.post(path, files={"file": (rpm.name, f, "application/x-rpm")})
    body = fields.fill(row.body)
    return fleet.api.request(row.method, path, json=body)


def creator_forms(value: Any) -> set[str]:
    """The JSON types of every `creator` in a document: a name (str) in the answers of the
    OBProxy and host operations, {id, name} (dict) in the task API's."""
    if isinstance(value, dict):
        found = {type(value["creator"]).__name__} if "creator" in value else set()
        return found.union(*(creator_forms(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(creator_forms(v) for v in value))
    return set()


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_answer_has_the_sample_keys(fleet: Fleet, row: Row) -> None:
    if row.needs_rpm and not HAS_RPMBUILD:
        pytest.skip("rpmbuild is missing: run scripts/system-deps.sh")
    r = _call(fleet, row)
    assert r.status_code == 200, r.text
    answer = r.json()
    sample = vendored(row.page)
    if "successful" in sample:
        assert answer["successful"] is True, r.text
    assert creator_forms(answer) == creator_forms(sample), r.text
    ours, theirs = key_paths(answer), key_paths(sample)
    missing = theirs - ours
    extra = ours - theirs
    report = json.dumps(
        {
            "missing": sorted(missing - set(row.missing)),
            "extra": sorted(extra - set(row.extra)),
            "excused but not missing": sorted(set(row.missing) - missing),
            "excused but not extra": sorted(set(row.extra) - extra),
        },
        indent=1,
    )
    assert missing == set(row.missing) and extra == set(row.extra), report


def test_plain_text_endpoints(fleet: Fleet) -> None:
    """The pages of time and status show plain text, not JSON: the same forms."""
    r = fleet.api.get("/api/v2/time")
    # "2020-11-11T15:46:27.316+08:00" on the page
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?([+-]\d\d:\d\d|Z)", r.text)
    for path in ("/api/status", "/api/status?includeUnavailableComponent=true"):
        r = fleet.api.get(path)
        assert (r.status_code, r.text) == (200, "okay")


def _shape(route: str) -> str:
    """`GET /a/{x}/b` and `GET /a/{y}/b` are the same route."""
    return re.sub(r"\{\w+\}", "{}", route)


def _routes() -> set[str]:
    return {
        _shape(f"{method} {route.path}")
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    }


def test_every_route_has_a_row() -> None:
    """A route is a row, an undocumented route (named with why), or not there yet."""
    routes = _routes()
    documented = {_shape(f"{row.method} {row.path.split('?')[0]}") for row in ROWS}
    undocumented = {_shape(route) for route in UNDOCUMENTED_ROUTES}
    assert documented <= routes, documented - routes
    assert routes - documented == undocumented, (routes - documented) ^ undocumented
    for page, route in NOT_IMPLEMENTED.items():
        assert _shape(route) not in routes, f"{route} exists: add a row"
        assert (SAMPLES / f"{page}.json").exists()


def test_every_vendored_sample_has_a_row_or_a_reason() -> None:
    pages = {p.relative_to(SAMPLES).with_suffix("").as_posix() for p in SAMPLES.rglob("*.json")}
    assert pages == {row.page for row in ROWS} | set(NOT_IMPLEMENTED)


@pytest.mark.skipif(not (DOCS / API).is_dir(), reason=f"no copy of the docs at {DOCS}")
def test_vendored_samples_are_the_pages_samples() -> None:
    for vendored_file in sorted(SAMPLES.rglob("*.json")):
        name = vendored_file.relative_to(SAMPLES).with_suffix("").as_posix()
        page = DOCS / API / f"{name}.md"
        assert parse_page(name, page.read_text()) == vendored(name), name
