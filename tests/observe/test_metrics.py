"""/metrics: a login with OBPROXY:READ, one registry per app, and numbers that move as requests
are answered and tasks run (read with prometheus-client's parser)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.engine import Flow, submit
from obfleet.services.users import create_user
from tests.conftest import ADMIN, LOOPBACK, basic, wait_task
from tests.observe.promparse import scrape, series, value
from tests.observe.subtasks import FailsWhileMarked, Passes

CREDENTIAL = "/api/v2/credentials/{credential_id}"


def submit_flow(client: TestClient, flow: Flow) -> int:
    with client.app.state.ctx.db.transaction() as session:  # type: ignore[attr-defined]
        return submit(session, flow, creator="admin")


def test_metrics_need_a_fleet_reader(client: TestClient) -> None:
    with client.app.state.ctx.db.transaction() as session:  # type: ignore[attr-defined]
        create_user(session, "auditor", "Auditor_Pass_12", ["AUDITOR"])
        create_user(session, "viewer", "Viewer_Pass_12", ["OBPROXY_VIEWER"])
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=basic("auditor", "Auditor_Pass_12")).status_code == 403
    assert value(scrape(client, basic("viewer", "Viewer_Pass_12")), "obfleet_metadb_pool_size")


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    before = scrape(client)
    for credential_id in (1, 2, 3):
        assert client.get(f"/api/v2/credentials/{credential_id}", headers=ADMIN).status_code == 404
    client.get("/no/such/path/42")
    after = scrape(client)

    total = "obfleet_http_requests_total"
    labels = {"route": CREDENTIAL, "method": "GET", "status": "404"}
    assert value(after, total, **labels) - value(before, total, **labels) == 3
    seconds = "obfleet_http_request_duration_seconds_count"
    assert value(after, seconds, route=CREDENTIAL, method="GET") == 3
    assert value(after, total, route="unmatched", method="GET", status="404") == 1
    routes = {s["route"] for s in series(after, total)}
    assert not any(route.endswith(("/1", "/42")) for route in routes), routes


def test_every_app_has_its_own_registry(client: TestClient, settings: Settings) -> None:
    client.get("/api/v2/time")
    other = dataclasses.replace(settings, data_dir=settings.data_dir.parent / "other")
    with TestClient(create_app(other, run_engine=False), client=LOOPBACK) as fresh:
        samples = scrape(fresh)
    # Only the fresh app's own scrape so far: the first app's requests are not in it.
    assert (
        value(
            samples, "obfleet_http_requests_total", route="/api/v2/time", method="GET", status="200"
        )
        == 0
    )


def test_task_and_subtask_metrics_move_as_tasks_run(
    engine_client: TestClient, tmp_path: Path
) -> None:
    client = engine_client
    before = scrape(client)
    assert series(before, "obfleet_engine_ready_subtasks")  # read from the metadb when scraped

    good = Flow("Observed task")
    good.chain(Passes, Passes)
    assert wait_task(client, submit_flow(client, good))["status"] == "SUCCESSFUL"

    marker = tmp_path / "fail"
    marker.touch()
    fragile = Flow("Observed fragile task")
    fragile.set("marker", str(marker))
    fragile.chain(Passes, FailsWhileMarked)
    fragile_id = submit_flow(client, fragile)
    assert wait_task(client, fragile_id)["status"] == "FAILED"
    failed = scrape(client)

    tasks = "obfleet_tasks_total"
    ok = {"name": "Observed task", "status": "SUCCESSFUL", "operation": "EXECUTE"}
    assert value(failed, tasks, **ok) == 1
    assert (
        value(
            failed, "obfleet_task_duration_seconds_count", name="Observed task", status="SUCCESSFUL"
        )
        == 1
    )
    assert (
        value(failed, tasks, name="Observed fragile task", status="FAILED", operation="EXECUTE")
        == 1
    )
    subtasks = "obfleet_subtasks_total"
    assert (
        value(failed, subtasks, name="Observed step", action="EXECUTE", outcome="SUCCESSFUL") == 3
    )
    assert (
        value(failed, subtasks, name="Observed fragile step", action="EXECUTE", outcome="FAILED")
        == 1
    )
    assert (
        value(
            failed,
            "obfleet_subtask_duration_seconds_count",
            name="Observed step",
            action="EXECUTE",
            outcome="SUCCESSFUL",
        )
        == 3
    )
    claimed = value(failed, "obfleet_engine_claimed_subtasks_total")
    assert claimed - value(before, "obfleet_engine_claimed_subtasks_total") == 4
    assert value(failed, "obfleet_engine_claim_duration_seconds_count") >= 1
    assert value(failed, "obfleet_engine_running_subtasks") == 0
    assert value(failed, "obfleet_engine_ready_subtasks") == 0

    marker.unlink()
    retried = client.post(f"/api/v2/tasks/instances/{fragile_id}/retry", headers=ADMIN)
    assert retried.status_code == 200, retried.text
    assert wait_task(client, fragile_id)["status"] == "SUCCESSFUL"
    after = scrape(client)
    assert (
        value(after, tasks, name="Observed fragile task", status="SUCCESSFUL", operation="RETRY")
        == 1
    )
    assert (
        value(after, subtasks, name="Observed fragile step", action="EXECUTE", outcome="SUCCESSFUL")
        == 1
    )


def test_the_ready_queue_is_read_from_the_metadb(engine_client: TestClient) -> None:
    """A task submitted while the engine is stopped waits READY: the gauge shows it."""
    client = engine_client
    engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    client.portal.call(engine.stop)  # type: ignore[union-attr]
    flow = Flow("Waiting task")
    flow.add(Passes)
    flow.add(Passes)
    submit_flow(client, flow)
    assert value(scrape(client), "obfleet_engine_ready_subtasks") == 2


def test_config_server_requests_are_counted_by_action(client: TestClient) -> None:
    for action in ("GetObProxyConfig", "GetObProxyConfig", "NoSuchAction"):
        client.get("/services", params={"Action": action})
    samples = scrape(client)
    counted = "obfleet_configserver_requests_total"
    assert value(samples, counted, action="GetObProxyConfig", method="GET", status="200") == 2
    assert value(samples, counted, action="other", method="GET", status="400") == 1


def test_metrics_can_be_turned_off(settings: Settings) -> None:
    off = dataclasses.replace(settings, metrics_enabled=False)
    with TestClient(create_app(off, run_engine=False), client=LOOPBACK) as client:
        response = client.get("/metrics", headers=ADMIN)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == 1116
        assert client.get("/api/v2/time").status_code == 200


def test_pool_figures_are_exported(client: TestClient) -> None:
    samples = scrape(client)
    for name in ("size", "checked_out", "checked_in", "overflow"):
        assert (f"obfleet_metadb_pool_{name}", frozenset()) in samples, name
