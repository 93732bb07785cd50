"""Large pages are written straight from rows (api/schema.WireRow), not through their models:
what they write must still be exactly what the documented model would write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy import update

from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.api.schemas.obproxy import ObproxyClusterOut
from obfleet.api.schemas.tasks import BasicTaskOut
from obfleet.store.models.obproxy import ObproxyCluster
from obfleet.timefmt import iso
from tests.conftest import ADMIN
from tests.obproxy.test_cluster_list import add_clusters, listed
from tests.obproxy.test_clusters import import_ob


class Sample(ApiModel):
    host_id: int
    ob_cluster_name: str
    last_seen: OcpTime | None
    create_time: OcpTime
    connections: float = 0.0


def test_a_row_is_written_with_the_models_keys_times_defaults_and_renames():
    made = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    columns = ("create_time", "name", "ignored", "last_seen", "host_id")
    wire = WireRow(Sample, columns, source={"ob_cluster_name": "name"})
    assert wire.dump((made, "ob1", "x", None, 7)) == {
        "hostId": 7,
        "obClusterName": "ob1",
        "lastSeen": None,
        "createTime": iso(made),
        "connections": 0.0,
    }
    model = Sample(host_id=7, ob_cluster_name="ob1", last_seen=None, create_time=made)
    assert wire.dump((made, "ob1", "x", None, 7)) == model.model_dump(by_alias=True, mode="json")


def test_a_required_field_no_column_holds_is_refused_when_the_writer_is_made():
    with pytest.raises(ValueError, match=r"no column 'name' for Sample\.ob_cluster_name"):
        WireRow(Sample, ("host_id", "last_seen", "create_time"), source={"ob_cluster_name": "name"})


def same_through(model: type[BaseModel], item: dict) -> None:
    assert model.model_validate(item).model_dump(by_alias=True, mode="json") == item


def test_listed_clusters_and_tasks_are_what_their_models_write(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 4)  # links to one or two clusters, with and without obproxies
    clusters = listed(client)["contents"]
    assert {len(c["obLinks"]) for c in clusters} == {1, 2}
    assert {len(c["obproxies"]) for c in clusters} == {0, 1}
    for cluster in clusters:
        same_through(ObproxyClusterOut, cluster)
    tasks = client.get("/api/v2/tasks/instances?size=2000", headers=ADMIN).json()["data"]
    assert tasks["contents"]
    for task in tasks["contents"]:
        assert task["subtasks"]
        same_through(BasicTaskOut, task)


def test_times_read_as_the_driver_gives_them_show_as_their_aware_values(client):
    """Lists read times unprocessed (store.base.as_stored): SQLite's text, a naive datetime
    from PostgreSQL's and MySQL's drivers. Each shows as the aware value stored, milliseconds
    truncated, whole seconds and the last microsecond included."""
    import_ob(client)
    add_clusters(client, 1, 1)
    db = client.app.state.ctx.db  # type: ignore[attr-defined]
    for value in (
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 0, 0, 1000, tzinfo=UTC),
    ):
        with db.transaction() as session:
            session.execute(update(ObproxyCluster).values(create_time=value))
        (cluster,) = listed(client)["contents"]
        assert cluster["createTime"] == iso(value)
