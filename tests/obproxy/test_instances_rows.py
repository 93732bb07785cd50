"""Which obproxy row an install or take-over task may call its own, in process (no hosts: SSH
and root@proxysys are stand-ins): a second task on the same host and SQL port is refused when
it is asked for, and, should it slip past that check, neither adopts the first task's row nor
deletes it when rolled back; a row and the task's claim on it commit together; a take-over's
parameter rollback sets back what a half-finished Sync changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from obfleet.appcontext import AppContext
from obfleet.engine.context import ContextChanges, SubtaskContext, TaskContextData
from obfleet.engine.definition import Subtask, class_name
from obfleet.flows.obproxy import install, takeover
from obfleet.flows.runtime import StepError
from obfleet.hosts import processes
from obfleet.hosts.processes import ProcessFacts
from obfleet.obproxy import discovery
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.records import host_access
from obfleet.records import obproxy as records
from obfleet.services import obproxy_instances as instances
from obfleet.services import obproxy_takeover
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.tasks import SubtaskInstance, TaskInstance
from tests.conftest import ADMIN, wait_task
from tests.obproxy.lab import CLUSTERS, add_hosts, app_of, obproxy_package, rs_list_cluster

RPM = "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm"
HOME = "/home/admin/obproxy-4.2.3.0"
PRINCIPAL = Principal(user_id=1, username="admin", permissions=frozenset())
# The cluster's runtime parameters, and what the OBProxy to take over has instead.
PARAMETERS = [
    {"name": "client_session_id_version", "value": "2"},
    {"name": "syslog_level", "value": "WARN"},
]
FOUND = {"client_session_id_version": "1", "syslog_level": "INFO"}


@dataclass
class Lab:
    client: TestClient
    cluster: int
    hosts: dict[str, int]

    @property
    def app(self) -> AppContext:
        app: AppContext = self.client.app.state.ctx  # type: ignore[attr-defined]
        return app

    def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        r = self.client.post(path, headers=ADMIN, json=body)
        return r.status_code, r.json()

    def batch_add(self, host: str, sql_port: int = 3883) -> tuple[int, dict[str, Any]]:
        body = {
            "hostIds": [self.hosts[host]],
            "sqlPort": sql_port,
            "exporterPort": sql_port + 1,
            "version": RPM,
        }
        return self.post(f"{CLUSTERS}/{self.cluster}/obproxies/batchAdd", body)

    def take_over(self, host: str, sql_port: int = 3883) -> tuple[int, dict[str, Any]]:
        body = {"hosts": [{"hostId": self.hosts[host], "sqlPort": sql_port}]}
        return self.post(f"{CLUSTERS}/{self.cluster}/takeOver", body)

    def racing_install(self, host: str, sql_port: int = 3883) -> int:
        """An install submitted as a concurrent request would be: past the request's checks."""
        with self.app.db.transaction() as session:
            cluster = records.get(session, self.cluster)
            target = instances.Target([self.hosts[host]], sql_port, sql_port + 1, RPM)
            checked = instances.check_target(
                session, target, instances.BATCH_ADD_FIELDS, cluster.install_path
            )
            return instances._submit_one(session, cluster, checked, self.hosts[host], PRINCIPAL)

    def racing_take_over(self, host: str, sql_port: int = 3883) -> int:
        with self.app.db.transaction() as session:
            cluster = records.get(session, self.cluster)
            entry = obproxy_takeover.TakeOverHost(self.hosts[host], sql_port)
            return obproxy_takeover._submit_one(session, cluster, entry, PRINCIPAL)

    def rows(self) -> dict[int, tuple[int, int, str]]:
        with self.app.db.session() as session:
            return {
                r.id: (r.host_id, r.sql_port, r.status)
                for r in session.scalars(select(ObproxyServer))
            }

    def task_count(self) -> int:
        with self.app.db.session() as session:
            return session.scalar(select(func.count()).select_from(TaskInstance)) or 0

    def strings(self, task_id: int) -> dict[str, str]:
        with self.app.db.session() as session:
            task = session.get(TaskInstance, task_id)
            assert task is not None
            return dict(task.context["stringMap"])

    def lists(self, task_id: int) -> dict[str, list[str]]:
        with self.app.db.session() as session:
            task = session.get(TaskInstance, task_id)
            assert task is not None
            return dict(task.context["listMap"])

    def set_strings(self, task_id: int, strings: dict[str, str]) -> None:
        with self.app.db.transaction() as session:
            task = session.get(TaskInstance, task_id)
            assert task is not None
            context = ContextChanges(strings=strings).apply_to(task.context)
            session.execute(
                update(TaskInstance).where(TaskInstance.id == task_id).values(context=context)
            )

    def set_row_status(self, row_id: int, status: str) -> None:
        with self.app.db.transaction() as session:
            row = session.get(ObproxyServer, row_id)
            assert row is not None
            records.set_status(row, status, None)

    def log(self, task: dict[str, Any], name: str, parallel_idx: int = -1) -> str:
        (subtask,) = [
            s for s in task["subtasks"] if s["name"] == name and s["parallelIdx"] == parallel_idx
        ]
        path = f"/api/v2/tasks/instances/{task['id']}/subtasks/{subtask['id']}/log"
        text: str = self.client.get(path, headers=ADMIN).json()["data"]["log"]
        return text

    def rollback(self, task_id: int) -> dict[str, Any]:
        r = self.client.post(f"/api/v2/tasks/instances/{task_id}/rollback", headers=ADMIN)
        assert r.status_code == 200, r.text
        return wait_task(self.client, task_id)


def _lab(client: TestClient) -> Lab:
    """RS_LIST cluster pc1 over ob1 (proxyro password recorded), with the runtime PARAMETERS;
    ONLINE hosts h1 and h2; the OBProxy package 4.2.3.0-3; no obproxy recorded."""
    cluster_id = rs_list_cluster(client, PARAMETERS)
    app = app_of(client)
    with app.db.transaction() as session:
        hosts = add_hosts(session, app, {1: "ONLINE", 2: "ONLINE"})
        session.add(obproxy_package(RPM, "4.2.3.0", "3"))
        session.flush()
        return Lab(client, cluster_id, {h.name: h.id for h in hosts})


@pytest.fixture
def lab(client: TestClient) -> Lab:
    """The app without its engine: tasks stay as submitted; steps are run by hand."""
    return _lab(client)


@pytest.fixture
def engine_lab(engine_client: TestClient) -> Lab:
    return _lab(engine_client)


@pytest.fixture
def no_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable(app: AppContext, host_id: int) -> Any:
        raise StepError(f"host {host_id} is not reachable in this test")

    monkeypatch.setattr(host_access, "connect", unreachable)


async def run_step(
    lab: Lab,
    task_id: int,
    step: type[Subtask],
    *,
    rollback: bool = False,
    parallel_idx: int = -1,
    fail_on: str | None = None,
) -> list[str]:
    """One run of `step` as the engine runs it: it sees the task context as committed, and its
    own context writes are applied only when it succeeds. `fail_on`: the run dies when it logs
    a line containing that text (as a timeout or a lost node would end it there)."""
    with lab.app.db.session() as session:
        task = session.get(TaskInstance, task_id)
        assert task is not None
        subtask_id = session.scalar(
            select(SubtaskInstance.id).where(
                SubtaskInstance.task_id == task_id,
                SubtaskInstance.class_name == class_name(step),
                SubtaskInstance.parallel_idx == parallel_idx,
            )
        )
        assert subtask_id is not None
        context = TaskContextData.from_json(task.context)
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if fail_on is not None and fail_on in line:
            raise RuntimeError("the run ends here")

    ctx = SubtaskContext(
        task_id=task_id,
        subtask_id=subtask_id,
        run_time=1,
        parallel_idx=parallel_idx,
        context=context,
        resources=lab.app,
        emit_log=emit,
    )
    await (step().rollback(ctx) if rollback else step().execute(ctx))
    with lab.app.db.transaction() as session:
        task = session.get(TaskInstance, task_id, with_for_update=True)
        assert task is not None
        merged = ctx.changes.apply_to(task.context)
        session.execute(
            update(TaskInstance).where(TaskInstance.id == task_id).values(context=merged)
        )
    return lines


def refused(lab: Lab, answer: tuple[int, dict[str, Any]], words: str, before: Any) -> None:
    status, body = answer
    assert status == 409 and body["error"]["code"] == 1005, body
    assert words in body["error"]["message"], body["error"]["message"]
    assert (lab.rows(), lab.task_count()) == before


# --- the request ---------------------------------------------------------------------------------


def pc2_on(lab: Lab, *hosts: str) -> dict[str, Any]:
    """A create of RS_LIST cluster pc2 over ob1, installing on these hosts at port 3883."""
    return {
        "name": "pc2",
        "workMode": "RS_LIST",
        "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
        "obproxyInstallParam": {
            "hostIds": [lab.hosts[h] for h in hosts],
            "sqlPort": 3883,
            "exportPort": 3884,
            "version": RPM,
        },
    }


def test_a_host_and_sql_port_an_unfinished_task_targets_is_refused(lab: Lab) -> None:
    status, body = lab.batch_add("h1")
    assert status == 200, body
    (first,) = body["data"]["contents"]
    before = (lab.rows(), lab.task_count())
    assert before[0] == {}  # the task records its row only once it runs
    targeted = f"task {first['id']} (Install obproxy, RUNNING) already targets port 3883"
    refused(lab, lab.batch_add("h1"), targeted, before)
    refused(lab, lab.take_over("h1"), targeted, before)
    refused(lab, lab.post(CLUSTERS, pc2_on(lab, "h2", "h1")), targeted, before)
    # Another port on that host, or that port on another host, is free.
    assert lab.batch_add("h1", 4883)[0] == 200
    status, body = lab.take_over("h2")
    assert status == 200, body
    (taking_over,) = body["data"]["contents"]

    # A take-over (and a create's branches) target their host and port as well.
    before = (lab.rows(), lab.task_count())
    targeted = f"task {taking_over['id']} (Take over obproxy, RUNNING) already targets port 3883"
    refused(lab, lab.batch_add("h2"), targeted, before)
    refused(lab, lab.take_over("h2"), targeted, before)
    install = {"hostIds": [lab.hosts["h2"]], "sqlPort": 5883, "exportPort": 5884, "version": RPM}
    status, body = lab.post(
        CLUSTERS, {**pc2_on(lab), "name": "pc3", "obproxyInstallParam": install}
    )
    assert status == 200, body
    before = (lab.rows(), lab.task_count())
    targeted = f"task {body['data']['id']} (Install obproxy, RUNNING) already targets port 5883"
    refused(lab, lab.take_over("h2", 5883), targeted, before)

    # Once it has ended (FAILED, before its Prepare recorded anything), the port is free: an
    # operator who gave up on that task is not blocked by it.
    with lab.app.db.transaction() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == first["id"]).values(status="FAILED")
        )
    assert lab.batch_add("h1")[0] == 200


async def assert_rollbacks_yield_then_undo(
    lab: Lab,
    task_id: int,
    row_id: int,
    update_step: type[Subtask],
    prepare_step: type[Subtask],
    *,
    held_by: str,
    taken_back_as: str,
) -> None:
    """The rollbacks of Update and Prepare leave a row another operation holds (`held_by`)
    untouched; once it is settled again, Update's takes it back and Prepare's deletes it."""
    lab.set_row_status(row_id, held_by)
    for step in (update_step, prepare_step):
        with pytest.raises(records.HeldElsewhere, match=held_by):
            await run_step(lab, task_id, step, rollback=True)
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, held_by)}
    lab.set_row_status(row_id, "RUNNING")
    await run_step(lab, task_id, update_step, rollback=True)
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, taken_back_as)}
    await run_step(lab, task_id, prepare_step, rollback=True)
    assert lab.rows() == {}


# --- install ------------------------------------------------------------------------------------


def test_a_racing_install_neither_adopts_nor_deletes_the_first_installs_row(
    engine_lab: Lab, no_ssh: None
) -> None:
    lab = engine_lab
    status, body = lab.batch_add("h1")
    assert status == 200, body
    first = wait_task(lab.client, body["data"]["contents"][0]["id"])
    assert first["status"] == "FAILED"  # its check could not reach the host
    (row_id,) = lab.rows()
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, "CREATING")}
    assert lab.strings(first["id"])["obproxy_server_id"] == str(row_id)

    second = wait_task(lab.client, lab.racing_install("h1"))
    assert second["status"] == "FAILED"
    failed = [s["name"] for s in second["subtasks"] if s["status"] == "FAILED"]
    assert failed == ["Prepare create obproxy"]
    assert (
        f"198.18.0.11:3883 is already recorded as obproxy {row_id} (another task is installing "
        "it or it runs there)"
    ) in lab.log(second, "Prepare create obproxy")
    assert "obproxy_server_id" not in lab.strings(second["id"])

    rolled_back = lab.rollback(second["id"])
    assert rolled_back["status"] == "SUCCESSFUL", rolled_back
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, "CREATING")}
    assert "this task recorded no obproxy on 198.18.0.11:3883" in lab.log(
        rolled_back, "Prepare create obproxy"
    )
    # The first install's own rollback does delete it.
    assert lab.rollback(first["id"])["status"] == "SUCCESSFUL"
    assert lab.rows() == {}


def test_a_creates_branches_keep_and_roll_back_their_own_rows(
    engine_lab: Lab, no_ssh: None
) -> None:
    lab = engine_lab
    status, body = lab.post(CLUSTERS, pc2_on(lab, "h1", "h2"))
    assert status == 200, body
    task = wait_task(lab.client, body["data"]["id"])
    assert task["status"] == "FAILED"
    by_host = {host_id: row_id for row_id, (host_id, _, _) in lab.rows().items()}
    strings = lab.strings(task["id"])
    assert strings["obproxy_server_id_0"] == str(by_host[lab.hosts["h1"]])
    assert strings["obproxy_server_id_1"] == str(by_host[lab.hosts["h2"]])
    rolled_back = lab.rollback(task["id"])
    assert rolled_back["status"] == "SUCCESSFUL", rolled_back
    assert lab.rows() == {}


async def test_prepare_keeps_its_row_even_when_its_run_fails_after_recording_it(
    lab: Lab,
) -> None:
    status, body = lab.batch_add("h1")
    assert status == 200, body
    task_id = body["data"]["contents"][0]["id"]
    with pytest.raises(RuntimeError, match="the run ends here"):
        await run_step(lab, task_id, install.PrepareCreateObproxy, fail_on="recorded as CREATING")
    (row_id,) = lab.rows()
    # The run's own writes are dropped, but the claim on the row committed with the row.
    assert lab.strings(task_id)["obproxy_server_id"] == str(row_id)
    # Run again (retried), Prepare finds its own row and goes on with it.
    await run_step(lab, task_id, install.PrepareCreateObproxy)
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, "CREATING")}

    # A racing install's Prepare fails, and its rollback leaves the row alone.
    racing = lab.racing_install("h1")
    with pytest.raises(records.HeldElsewhere, match=f"already recorded as obproxy {row_id}"):
        await run_step(lab, racing, install.PrepareCreateObproxy)
    await run_step(lab, racing, install.UpdateObproxyStatus, rollback=True)
    await run_step(lab, racing, install.PrepareCreateObproxy, rollback=True)
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, "CREATING")}

    # Update's rollback takes the row back as DELETING, unless another operation holds it.
    await assert_rollbacks_yield_then_undo(
        lab,
        task_id,
        row_id,
        install.UpdateObproxyStatus,
        install.PrepareCreateObproxy,
        held_by="RESTARTING",
        taken_back_as="DELETING",
    )


# --- take-over ----------------------------------------------------------------------------------

CHECKED = {
    "install_path": HOME,
    "exporter_port": "3884",
    "package_version": "4.2.3.0-3",
    "proxysys_password_source": "cluster",
    "obproxy_pid": "4242",
}


async def test_a_racing_take_over_neither_adopts_nor_forgets_the_first_ones_row(
    lab: Lab,
) -> None:
    status, body = lab.take_over("h1")
    assert status == 200, body
    first = body["data"]["contents"][0]["id"]
    second = lab.racing_take_over("h1")
    for task_id in (first, second):  # both checked the OBProxy before either recorded it
        lab.set_strings(task_id, CHECKED)
    with pytest.raises(RuntimeError, match="the run ends here"):
        await run_step(lab, first, takeover.PrepareTakeOverObproxy, fail_on="TAKINGOVER")
    (row_id,) = lab.rows()
    assert lab.strings(first)["obproxy_server_id"] == str(row_id)
    await run_step(lab, first, takeover.PrepareTakeOverObproxy)  # its own: adopted

    with pytest.raises(records.HeldElsewhere) as error:
        await run_step(lab, second, takeover.PrepareTakeOverObproxy)
    assert (
        f"198.18.0.11:3883 is already recorded as obproxy {row_id} (another task is taking it "
        "over or it runs there)"
    ) in str(error.value)
    assert "obproxy_server_id" not in lab.strings(second)

    lab.set_row_status(row_id, "RUNNING")  # the first take-over is done
    await run_step(lab, second, takeover.UpdateTakenOverStatus, rollback=True)
    await run_step(lab, second, takeover.PrepareTakeOverObproxy, rollback=True)
    assert lab.rows() == {row_id: (lab.hosts["h1"], 3883, "RUNNING")}
    # Not TAKINGOVER any more: not even the first task's Prepare adopts it again.
    with pytest.raises(records.HeldElsewhere, match=f"already recorded as obproxy {row_id}"):
        await run_step(lab, first, takeover.PrepareTakeOverObproxy)

    # The first task's rollback takes back its row, unless another operation holds it now.
    await assert_rollbacks_yield_then_undo(
        lab,
        first,
        row_id,
        takeover.UpdateTakenOverStatus,
        takeover.PrepareTakeOverObproxy,
        held_by="DELETING",
        taken_back_as="TAKINGOVER",
    )


@dataclass
class StandIn:
    """root@proxysys of the OBProxy taken over: its config, and what was altered."""

    config: dict[str, str]
    altered: list[tuple[str, str]]
    refuse: Callable[[str, str], bool]


@pytest.fixture
def obproxy(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """An OBProxy of pc1 on h1:3883 (pid 4242), as Check finds it, without a host: the SSH
    reads and root@proxysys are stand-ins; it accepts any password."""
    stand_in = StandIn(
        {
            "app_name": "pc1",
            "rootservice_list": "198.18.0.1:2881",
            "rootservice_cluster_name": "ob1",
            "obproxy_config_server_url": "",
            "prometheus_listen_port": "3884",
            **FOUND,
        },
        [],
        lambda name, value: False,
    )

    async def connect(app: AppContext, host_id: int) -> Any:
        return object()

    async def find(*args: Any) -> ProcessFacts:
        return ProcessFacts(
            4242, f"{HOME}/bin/obproxy", HOME, "admin", "admin", (f"{HOME}/bin/obproxy",)
        )

    async def version(*args: Any) -> tuple[str, str]:
        return "4.2.3.0", "3"

    async def pids_in(conn: Any, home: str) -> list[int]:
        return [4242]

    async def ping(self: ProxysysClient) -> None:
        return None

    async def show(self: ProxysysClient, like: str | None = None) -> dict[str, str]:
        config = stand_in.config
        return dict(config) if like is None else {like: config[like]} if like in config else {}

    async def alter(self: ProxysysClient, name: str, value: str) -> None:
        if stand_in.refuse(name, value):
            raise AdminError(f"{self.label}: timed out")
        stand_in.config[name] = value
        stand_in.altered.append((name, value))

    monkeypatch.setattr(host_access, "connect", connect)
    monkeypatch.setattr(discovery, "listener", find)
    monkeypatch.setattr(discovery, "version", version)
    monkeypatch.setattr(processes, "pids_in", pids_in)
    monkeypatch.setattr(ProxysysClient, "ping", ping)
    monkeypatch.setattr(ProxysysClient, "show_proxyconfig", show)
    monkeypatch.setattr(ProxysysClient, "alter_proxyconfig", alter)
    return stand_in


def test_a_take_over_rollback_sets_back_what_a_half_finished_sync_changed(
    engine_lab: Lab, obproxy: StandIn
) -> None:
    lab = engine_lab
    # The second `alter proxyconfig` of Sync times out: the first one has changed a value.
    obproxy.refuse = lambda name, value: (name, value) == ("syslog_level", "WARN")
    status, body = lab.take_over("h1")
    assert status == 200, body
    task = wait_task(lab.client, body["data"]["contents"][0]["id"])
    assert task["status"] == "FAILED"
    failed = [s["name"] for s in task["subtasks"] if s["status"] == "FAILED"]
    assert failed == ["Sync obproxy parameter"]
    assert obproxy.config["client_session_id_version"] == "2"

    rolled_back = lab.rollback(task["id"])
    assert rolled_back["status"] == "SUCCESSFUL", rolled_back
    assert {name: obproxy.config[name] for name in FOUND} == FOUND
    assert obproxy.altered[-1] == ("client_session_id_version", "1")
    # Check kept them: the values it found, before anything was changed.
    assert lab.lists(task["id"]).get("previous_parameters") == [
        f"{k}={v}" for k, v in FOUND.items()
    ]
    assert lab.rows() == {}
