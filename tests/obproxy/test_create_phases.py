"""A create validates in a read session and writes in a short transaction of its own
(services/obproxy_clusters.create): refused input never opens a write transaction, and what
changes between the two phases gets the answer a later create would get."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.services import obproxy_clusters
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import ObproxyCluster
from tests.conftest import LOOPBACK
from tests.obproxy.test_clusters import create, import_ob


@pytest.fixture
def quiet_client(settings: Settings) -> Iterator[TestClient]:
    """No audit trail (its record is a write transaction of every changing request) and no
    engine: the create's own transactions are the only ones."""
    quiet = dataclasses.replace(settings, audit_enabled=False)
    with TestClient(
        create_app(quiet, run_engine=False), raise_server_exceptions=False, client=LOOPBACK
    ) as c:
        yield c


def write_begins(client: TestClient) -> list[bool]:
    """Grows by one entry per write transaction begun on the app's metadb from now on."""
    begun: list[bool] = []
    engine = client.app.state.ctx.db.engine  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("obfleet_write"):
            begun.append(True)

    return begun


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "taken"}, 21004),
        ({"obLinks": [{"clusterName": "hooray", "obClusterId": 9, "username": "proxyro"}]}, 11001),
        ({"parameters": [{"name": "no_such_parameter", "value": "1"}]}, None),
        (
            {
                "obproxyInstallParam": {
                    "hostIds": [77],
                    "version": "x.rpm",
                    "sqlPort": 2883,
                    "exportPort": 2884,
                }
            },
            7005,
        ),
    ],
)
def test_a_refused_create_opens_no_write_transaction(
    quiet_client: TestClient, fields: dict[str, Any], code: int | None
) -> None:
    import_ob(quiet_client)
    assert create(quiet_client, name="taken").status_code == 200
    begun = write_begins(quiet_client)
    r = create(quiet_client, **fields)
    assert r.status_code >= 400, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code, r.text
    assert begun == []
    assert create(quiet_client, name="fine").status_code == 200
    assert begun == [True]  # a create that passes writes once


def _after_both_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., int]:
    """Make `_write` wait until two creates have both passed validation."""
    both = threading.Barrier(2, timeout=20)
    write = obproxy_clusters._write

    def waiting(*args: Any, **kwargs: Any) -> int:
        both.wait()
        return write(*args, **kwargs)

    monkeypatch.setattr(obproxy_clusters, "_write", waiting)
    return waiting


def test_two_creates_of_one_name_give_one_cluster_and_one_21004(
    quiet_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_ob(quiet_client)
    _after_both_validated(monkeypatch)
    answers: list[Any] = [None, None]

    def post(i: int) -> None:
        answers[i] = create(quiet_client, name="twin")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 409], [r.text for r in answers]
    (refused,) = [r for r in answers if r.status_code == 409]
    assert refused.json()["error"]["code"] == 21004, refused.text
    assert "twin" in refused.json()["error"]["message"]
    db = quiet_client.app.state.ctx.db  # type: ignore[attr-defined]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ObproxyCluster)) == 1
        names = session.scalars(select(Credential.name)).all()
        assert names.count("proxysys_twin") == 1
