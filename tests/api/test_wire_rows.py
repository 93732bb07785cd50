"""Large pages are written straight from rows (api/schema.WireRow), not through their models:
what they write must still be exactly what the documented model would write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.api.schemas.obproxy import ObproxyClusterOut
from obfleet.api.schemas.tasks import BasicTaskOut
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
    assert wire((made, "ob1", "x", None, 7)) == {
        "hostId": 7,
        "obClusterName": "ob1",
        "lastSeen": None,
        "createTime": iso(made),
        "connections": 0.0,
    }
    model = Sample(host_id=7, ob_cluster_name="ob1", last_seen=None, create_time=made)
    assert wire((made, "ob1", "x", None, 7)) == model.model_dump(by_alias=True, mode="json")


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
