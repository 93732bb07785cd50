"""How stale a config-server answer may be (obfleet.configserver.cache), the same on every
metadb: the generation read is trusted, with no statement at all, for
OBFLEET_CONFIGSERVER_STALENESS after it was read; a change this process commits is in its very
next answer; a change committed by another replica is in every answer once that time has passed.

Another replica's commit is made here as it reaches this process: on a bare connection, which
changes the rows and moves the generation in the metadb without this process's sessions (and so
its count of its own bumps) knowing. Time is the cache's clock, moved by hand: nothing waits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update
from sqlalchemy.sql.dml import Update

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.configserver.cache import cache_for
from obfleet.store.db import Database
from obfleet.store.models.configserver import ConfigServerGeneration
from obfleet.store.models.ob_clusters import ObCluster
from tests.configserver.helpers import db_of, import_cluster, ok, set_root_servers
from tests.conftest import LOOPBACK

STALENESS_S = 4.0  # and the clock moves by binary fractions of it: exact sums
RS = {"Action": "ObRootServiceInfo", "ObCluster": "obcluster"}


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, configserver_staleness_s=STALENESS_S)


def clocked(client: TestClient) -> Clock:
    """The app's config-server cache, on a clock of the test's own."""
    clock = Clock()
    cache_for(db_of(client)).clock = clock
    return clock


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return clocked(client)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement the engine sends to the metadb meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def committed_by_another_replica(db: Database, change: Update) -> None:
    """`change` and the generation's bump in one transaction, as another replica commits them."""
    generation = ConfigServerGeneration.__table__
    with db.engine.begin() as conn:
        conn.execute(change)
        conn.execute(update(generation).values(value=generation.c.value + 1))


def standby(db: Database) -> None:
    committed_by_another_replica(
        db, update(ObCluster).where(ObCluster.name == "obcluster").values(type="STANDBY")
    )


def test_a_read_within_the_staleness_asks_the_metadb_nothing(
    client: TestClient, clock: Clock
) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    answer = ok(client, **RS)
    clock.now += STALENESS_S * 7 / 8
    with statements(db) as seen:
        assert ok(client, **RS) == answer
    assert seen == []
    with statements(db) as seen:  # a new question: its data is read, the generation is not
        ok(client, Action="GetObProxyConfig")
    assert seen and not [s for s in seen if "configserver_generation" in s], seen

    clock.now += STALENESS_S / 8  # the staleness has passed: one lookup, then trusted again
    with statements(db) as seen:
        assert ok(client, **RS) == answer
    assert len(seen) == 1 and "configserver_generation" in seen[0], seen
    with statements(db) as seen:
        assert ok(client, **RS) == answer
    assert seen == []


def test_a_change_through_this_process_is_in_its_next_answer(
    client: TestClient, clock: Clock
) -> None:
    """With the clock standing still: only this process's own commit can make it read again."""
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    assert ok(client, **RS)["RsList"][0]["address"] == "198.18.0.2:2882"
    listed = ok(client, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    set_root_servers(db, "obcluster", ("198.18.0.7", 2881))
    assert ok(client, **RS)["RsList"][0]["address"] == "198.18.0.7:2882"
    import_cluster(client, "other", 2)  # through the API
    now = ok(client, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    assert [e["ObRegion"] for e in now] == [e["ObRegion"] for e in listed] + ["other"]


def test_another_replicas_change_is_served_once_the_staleness_has_passed(
    client: TestClient, clock: Clock
) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    assert ok(client, **RS)["Type"] == "PRIMARY"
    version = ok(client, Action="GetObProxyConfig", VersionOnly="true")
    standby(db)
    clock.now += STALENESS_S * 7 / 8  # still trusted: the answer computed before the change
    with statements(db) as seen:
        assert ok(client, **RS)["Type"] == "PRIMARY"
    assert seen == []
    clock.now += STALENESS_S / 8
    assert ok(client, **RS)["Type"] == "STANDBY"
    assert ok(client, Action="GetObProxyConfig", VersionOnly="true") != version


def test_no_staleness_reads_the_generation_for_every_answer(settings: Settings) -> None:
    """OBFLEET_CONFIGSERVER_STALENESS=0: another replica's change is in the very next answer,
    at one generation lookup per answer."""
    app = create_app(replace(settings, configserver_staleness_s=0.0), run_engine=False)
    with TestClient(app, raise_server_exceptions=False, client=LOOPBACK) as client:
        clocked(client)  # standing still: only the setting decides
        db = db_of(client)
        import_cluster(client, "obcluster", 1)
        assert ok(client, **RS)["Type"] == "PRIMARY"
        for _ in range(2):
            with statements(db) as seen:
                assert ok(client, **RS)["Type"] == "PRIMARY"
            assert len(seen) == 1 and "configserver_generation" in seen[0], seen
        standby(db)
        assert ok(client, **RS)["Type"] == "STANDBY"


def test_the_staleness_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBFLEET_CONFIGSERVER_STALENESS", raising=False)
    assert Settings.from_env().configserver_staleness_s == 1.0
    for text, value in (("0", 0.0), ("0.25", 0.25), ("3", 3.0)):
        monkeypatch.setenv("OBFLEET_CONFIGSERVER_STALENESS", text)
        assert Settings.from_env().configserver_staleness_s == value
    for text in ("-1", "nan", "inf", "soon"):
        monkeypatch.setenv("OBFLEET_CONFIGSERVER_STALENESS", text)
        with pytest.raises(ValueError, match="OBFLEET_CONFIGSERVER_STALENESS"):
            Settings.from_env()
