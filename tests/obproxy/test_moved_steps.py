"""Tasks recorded before the OBProxy steps moved into flows/obproxy/ still run: a FAILED task
whose subtasks carry the old class names is retried, and its steps run as they are now."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from obfleet.engine.definition import class_name, resolve
from obfleet.engine.flow import submit
from obfleet.flows.obproxy import install, offline
from obfleet.store.models.obproxy import ObproxyCluster
from obfleet.store.models.tasks import SubtaskInstance, TaskInstance
from tests.conftest import ADMIN, wait_task

# As the code before the move stored them.
OLD_NAMES = {
    offline.StartOffline: "obfleet.flows.obproxy_cluster.StartOffline",
    offline.FinishOffline: "obfleet.flows.obproxy_cluster.FinishOffline",
    install.SetProxyroPassword: "obfleet.flows.install_obproxy.SetProxyroPassword",
}


def test_every_old_name_resolves_to_the_class_that_moved() -> None:
    for cls, old in OLD_NAMES.items():
        assert resolve(old) is cls
        assert class_name(cls) != old


def _failed_old_task(client: TestClient) -> int:
    """Delete of an empty cluster, as the old code recorded it, FAILED at its first step."""
    with client.app.state.ctx.db.transaction() as session:
        cluster = ObproxyCluster(name="pc_old")
        session.add(cluster)
        session.flush()
        task_id = submit(session, offline.build(cluster, [], delete_cluster=True), creator="admin")
        subtasks = session.scalars(
            select(SubtaskInstance)
            .where(SubtaskInstance.task_id == task_id)
            .order_by(SubtaskInstance.series_id)
        ).all()
        for subtask in subtasks:
            subtask.class_name = OLD_NAMES[resolve(subtask.class_name)]
        subtasks[0].status = "FAILED"
        session.execute(
            update(TaskInstance).where(TaskInstance.id == task_id).values(status="FAILED")
        )
        return task_id


def test_a_failed_task_recorded_with_the_old_names_is_retried_to_the_end(
    engine_client: TestClient,
) -> None:
    client = engine_client
    task_id = _failed_old_task(client)
    task = client.get(f"/api/v2/tasks/instances/{task_id}", headers=ADMIN).json()["data"]
    assert task["status"] == "FAILED"
    retried = client.post(f"/api/v2/tasks/instances/{task_id}/retry", headers=ADMIN)
    assert retried.status_code == 200, retried.text
    done = wait_task(client, task_id)
    assert done["status"] == "SUCCESSFUL", done
    assert [s["name"] for s in done["subtasks"]] == ["Start node", "Finish node"]
    # FinishOffline, stored under its old name, forgot the cluster.
    assert client.get("/api/v2/obproxy/clusters", headers=ADMIN).json()["data"]["contents"] == []
