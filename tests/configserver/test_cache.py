"""The config server's answer cache: a repeated read costs no statement at all while this
process has not moved the config-server generation (counted statement by statement on the
engine), and every kind of change to what it answers, through whichever path, moves the
generation so that the next read computes afresh. How long the generation read is trusted
(changes by others) is in test_staleness.py; cross-replica behaviour in test_replicas.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.sql.util import find_tables

from obfleet.config import Settings
from obfleet.configserver.cache import cache_for
from obfleet.store.db import Database
from obfleet.store.models.configserver import (
    CONFIG_SERVER_TABLES,
    GENERATION,
    ConfigServerGeneration,
    RootServiceRegistration,
)
from obfleet.store.models.credentials import Credential
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.timefmt import utcnow
from tests.configserver.helpers import (
    OBSERVER_BODY,
    db_of,
    import_cluster,
    ok,
    servers,
    set_links,
    set_root_servers,
)
from tests.conftest import ADMIN, wait_task

GENERATION_TABLE = ConfigServerGeneration.__tablename__


CONFIG_TABLES = {*CONFIG_SERVER_TABLES, GENERATION_TABLE}


@dataclass
class Statements:
    """The statements naming a config-server table (the engine's own polling, running in the
    background in some tests, is left out) and every table they name."""

    sql: list[str]
    tables: set[str]


@contextmanager
def statements(db: Database, everything: bool = False) -> Iterator[Statements]:
    """The config server's statements the engine runs meanwhile (`everything`: all of them),
    and the tables they name."""
    seen = Statements([], set())

    def before_execute(_conn: Any, clause: Any, *_args: Any) -> None:
        tables = {t.name for t in find_tables(clause, include_joins=True)}
        if everything or tables & CONFIG_TABLES:
            seen.sql.append(str(clause))
            seen.tables.update(tables)

    event.listen(db.engine, "before_execute", before_execute)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_execute", before_execute)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Only this process's own bumps may make the cache read the generation again here, however
    slowly the test runs (the staleness allowed for others' changes is in test_staleness.py)."""
    return replace(settings, configserver_staleness_s=3600.0)


def generation(db: Database) -> int:
    with db.session() as session:
        value = GENERATION.read(session)
    assert value is not None
    return value


def body(client: TestClient, method: str, **params: str) -> bytes:
    """The raw answer, with this request's own Trace and Cost cut off."""
    r = client.request(method, "/services", params=params)
    return r.content.split(b',"Trace":')[0]


# Every read action, each way it is asked, answered or refused.
READS: list[tuple[str, dict[str, str]]] = [
    ("GET", {"Action": "GetObProxyConfig", "ObproxyClusterName": "proxy1"}),
    ("GET", {"Action": "GetObProxyConfig", "ObproxyClusterName": "proxy1", "VersionOnly": "true"}),
    ("POST", {"Action": "GetObProxyConfig"}),
    ("GET", {"Action": "GetObRootServiceInfoUrlTemplate", "ObproxyClusterName": "proxy1"}),
    ("GET", {"Action": "ObRootServiceInfo", "ObCluster": "obcluster"}),
    ("GET", {"Action": "ObRootServiceInfo", "ObCluster": "obcluster", "version": "2"}),
    ("GET", {"Action": "ObIDCRegionInfo", "ObRegion": "obcluster", "version": "2"}),
    ("GET", {"Action": "ObRootServiceInfo", "ObCluster": "nosuch"}),  # 404
    ("GET", {"Action": "GetObProxyConfig", "ObproxyClusterName": "nosuch"}),  # 404
]


@pytest.mark.parametrize(("method", "params"), READS, ids=[str(p) for _, p in READS])
def test_a_repeated_read_costs_no_statement(
    client: TestClient, method: str, params: dict[str, str]
) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    set_links(db, "proxy1", "obcluster")
    cache = cache_for(db)
    with statements(db, everything=True) as first:  # no engine runs here: all are the answer's
        answer = body(client, method, **params)
    assert len(first.sql) > 1 and first.tables - {GENERATION_TABLE}
    # The guard for future readers: every table an answer is computed from must be watched.
    assert first.tables <= CONFIG_TABLES, first.tables
    hits = cache.stats.hits
    for _ in range(3):
        with statements(db, everything=True) as again:
            assert body(client, method, **params) == answer
        assert again.sql == []
    assert cache.stats.hits == hits + 3


def test_a_cached_answer_needs_no_worker_thread(client: TestClient) -> None:
    """OBProxies poll: a cached answer is given on the event loop, so it never waits behind
    request handlers holding every worker thread (obfleet.api.threads)."""
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    set_links(db, "proxy1", "obcluster")
    asked = {"Action": "GetObProxyConfig", "ObproxyClusterName": "proxy1"}
    answer = body(client, "GET", **asked)
    limiter = client.portal.call(to_thread.current_default_thread_limiter)
    holders = [object() for _ in range(int(limiter.total_tokens))]
    for holder in holders:
        client.portal.call(limiter.acquire_on_behalf_of, holder)
    with ThreadPoolExecutor(1) as pool:
        again = pool.submit(body, client, "GET", **asked)
        try:
            assert again.result(timeout=30) == answer
        finally:  # before the pool's end, which waits for the request
            for holder in holders:
                client.portal.call(limiter.release_on_behalf_of, holder)


def test_unrelated_writes_keep_the_cache(client: TestClient) -> None:
    """Credentials, users, tasks: commits that change no watched table leave it alone."""
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    before = generation(db)
    body(client, "GET", Action="GetObProxyConfig")
    r = client.post(
        "/api/v2/credentials",
        headers=ADMIN,
        json={
            "name": "c1",
            "targetType": "HOST",
            "authType": "PASSWORD",
            "username": "u",
            "password": "Pw_123456",
        },
    )
    assert r.status_code == 200, r.text
    with db.transaction() as session:
        credential = session.scalars(select(Credential)).first()
        assert credential is not None
        credential.description = "touched"
    assert generation(db) == before
    with statements(db) as again:
        body(client, "GET", Action="GetObProxyConfig")
    assert again.sql == []


def test_a_rolled_back_change_does_not_count(client: TestClient) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    before = generation(db)
    with pytest.raises(RuntimeError), db.transaction() as session:
        session.scalars(select(ObCluster)).one().name = "renamed"
        session.flush()
        raise RuntimeError("give up")
    assert generation(db) == before
    with db.transaction() as session:  # the next transaction, unrelated, bumps nothing
        session.scalars(select(Credential)).all()
    assert generation(db) == before


def test_savepoints_leave_the_bump_to_the_commit(client: TestClient) -> None:
    """A change, then a savepoint rolled back, then the commit: bumped once, at the commit; a
    change inside a savepoint released counts as well."""
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    before = generation(db)
    with db.transaction() as session:
        session.scalars(select(ObCluster)).one().type = "STANDBY"
        session.flush()
        nested = session.begin_nested()
        session.add(
            Credential(
                name="x",
                target_type="HOST",
                auth_type="PASSWORD",
                username="u",
                secret_encrypted="",
            )
        )
        session.flush()
        nested.rollback()
        assert generation(db) == before  # nothing committed yet
    assert generation(db) == before + 1
    with db.transaction() as session, session.begin_nested():
        session.scalars(select(ObCluster)).one().type = "PRIMARY"
    assert generation(db) == before + 2


# --- every kind of change ------------------------------------------------------------------


def _api(client: TestClient, method: str, path: str, json: Any = None) -> Any:
    r = client.request(method, path, headers=ADMIN, json=json)
    assert r.status_code == 200 and r.json()["successful"], r.text
    return r.json()["data"]


def _cluster_id(client: TestClient, name: str) -> int:
    clusters = _api(client, "GET", f"/api/v2/obproxy/clusters?name={name}")["contents"]
    return int(next(c["id"] for c in clusters if c["name"] == name))


def create_proxy(client: TestClient) -> None:
    link = {"clusterName": "other", "obClusterId": 2, "username": "proxyro"}
    task = _api(
        client,
        "POST",
        "/api/v2/obproxy/clusters",
        {"name": "proxy2", "workMode": "CONFIG_URL", "obLinks": [link]},
    )
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"


def delete_proxy(client: TestClient) -> None:
    task = _api(client, "DELETE", f"/api/v2/obproxy/clusters/{_cluster_id(client, 'proxy1')}")
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"


def add_link(client: TestClient) -> None:
    _api(
        client,
        "POST",
        f"/api/v2/obproxy/clusters/{_cluster_id(client, 'proxy1')}/obLinks/batchAdd",
        [{"clusterName": "other", "obClusterId": 2, "username": "proxyro"}],
    )


def remove_link(client: TestClient) -> None:
    proxy = _cluster_id(client, "proxy1")
    _api(client, "DELETE", f"/api/v2/obproxy/clusters/{proxy}/obLinks/obcluster")


def import_ob(client: TestClient) -> None:
    import_cluster(client, "third", 3, ("198.18.0.9", 2881))


def delete_ob(client: TestClient) -> None:
    with db_of(client).session() as session:
        other = session.scalars(select(ObCluster).where(ObCluster.name == "other")).one()
    _api(client, "DELETE", f"/api/v2/ob/clusters/{other.id}")


def move_root_server(client: TestClient) -> None:
    set_root_servers(db_of(client), "obcluster", ("198.18.0.7", 2881))


def relink_by_orm(client: TestClient) -> None:
    set_links(db_of(client), "proxy1", "obcluster", "other")


# Registrations are of a cluster no operator recorded: those of a recorded one are refused.
OBSERVED = {**OBSERVER_BODY, "ObCluster": "observed", "ObRegion": "observed"}


def register(client: TestClient) -> None:
    ok(client, "POST", body=OBSERVED, Action="ObRootServiceInfo", ObCluster="observed")


def deregister(client: TestClient) -> None:
    ok(
        client,
        "DELETE",
        Action="ObRootServiceInfo",
        ObCluster="observed",
        version="2",
        ObClusterId=1,
    )


def obd_register(client: TestClient) -> None:
    ok(client, "POST", Action="ObRootServiceRegister", ObCluster="newcomer", ObClusterId=5)


def obd_delete(client: TestClient) -> None:
    ok(client, "POST", Action="DeleteObRootServiceInfoByClusterName", ClusterName="observed")


def core_insert(client: TestClient) -> None:
    """A Core statement through the session, as no writer does yet: still seen."""
    now = utcnow()
    with db_of(client).transaction() as session:
        session.execute(
            insert(RootServiceRegistration).values(
                name="observed",
                ob_cluster_id=1,
                type="PRIMARY",
                rs_list=servers(("198.18.0.8", 2881)),
                readonly_rs_list=[],
                timestamp=1,
                create_time=now,
                update_time=now,
            )
        )


def core_update(client: TestClient) -> None:
    with db_of(client).transaction() as session:
        session.execute(
            update(ObCluster).where(ObCluster.name == "obcluster").values(type="STANDBY")
        )


def nothing(client: TestClient) -> None:
    pass


# (what is done before the answers are cached, the change under test)
CHANGES: list[tuple[Callable[[TestClient], None], Callable[[TestClient], None]]] = [
    (nothing, create_proxy),
    (nothing, delete_proxy),
    (nothing, add_link),
    (relink_by_orm, remove_link),  # proxy1 keeps one link: the last cannot go
    (nothing, import_ob),
    (nothing, delete_ob),
    (nothing, move_root_server),
    (nothing, relink_by_orm),
    (nothing, register),
    (register, deregister),
    (nothing, obd_register),
    (register, obd_delete),
    (nothing, core_insert),
    (nothing, core_update),
]
# What each read shows of a change: one of them must differ after every change.
WATCHERS = [
    {"Action": "GetObProxyConfig"},
    {"Action": "GetObProxyConfig", "ObproxyClusterName": "proxy1"},
    {"Action": "GetObProxyConfig", "ObproxyClusterName": "proxy2"},
    {"Action": "ObRootServiceInfo", "ObCluster": "obcluster", "version": "2"},
]


@pytest.mark.parametrize(("setup", "change"), CHANGES, ids=[c.__name__ for _, c in CHANGES])
def test_every_change_invalidates(
    engine_client: TestClient,
    setup: Callable[[TestClient], None],
    change: Callable[[TestClient], None],
) -> None:
    client = engine_client
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    import_cluster(client, "other", 2, ("198.18.0.3", 2881))
    set_links(db, "proxy1", "obcluster")
    setup(client)
    before = generation(db)
    answers = [body(client, "GET", **params) for params in WATCHERS]
    with statements(db) as cached:
        assert [body(client, "GET", **params) for params in WATCHERS] == answers
    assert cached.sql == [], "the second round is from the cache"

    change(client)

    assert generation(db) > before
    misses = cache_for(db).stats.misses
    fresh = [body(client, "GET", **params) for params in WATCHERS]
    assert cache_for(db).stats.misses == misses + len(WATCHERS), "recomputed, not from the cache"
    assert fresh != answers
    cache_for(db).clear()  # and what was recomputed is what a cold cache answers
    assert [body(client, "GET", **params) for params in WATCHERS] == fresh


# --- changes that change nothing -----------------------------------------------------------

# Deletes of what is not there: anyone may send them, and a bump would empty every replica's
# cache each time.
NO_OPS: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"Action": "DeleteObRootServiceInfoByClusterName", "ClusterName": "nothere"}),
    (
        "DELETE",
        {"Action": "ObRootServiceInfo", "ObCluster": "nothere", "version": "2", "ObClusterId": 1},
    ),
    (  # a registered name, another id
        "DELETE",
        {"Action": "ObRootServiceInfo", "ObCluster": "other", "version": "2", "ObClusterId": 9},
    ),
]


@pytest.mark.parametrize(("method", "params"), NO_OPS, ids=[str(p) for _, p in NO_OPS])
def test_a_delete_that_removes_nothing_keeps_the_cache(
    client: TestClient, method: str, params: dict[str, Any]
) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    ok(
        client,
        "POST",
        body={**OBSERVER_BODY, "ObCluster": "other", "ObRegion": "other"},
        Action="ObRootServiceInfo",
        ObCluster="other",
    )
    before = generation(db)
    answer = body(client, "GET", Action="GetObProxyConfig")
    for _ in range(3):
        assert ok(client, method, **params) in ("success", "successful")
    assert generation(db) == before
    with statements(db) as again:
        assert body(client, "GET", Action="GetObProxyConfig") == answer
    assert again.sql == [], "still served from the cache"


def test_statements_that_match_no_row_do_not_count_and_those_that_do_count(
    client: TestClient,
) -> None:
    """The rule behind it, for any writer: an UPDATE or DELETE of a watched table that matches
    no row bumps nothing; one that matches a row does, even after one that matched none."""
    db = db_of(client)
    import_cluster(client, "obcluster", 1)
    before = generation(db)
    with db.transaction() as session:
        session.execute(update(ObCluster).where(ObCluster.name == "nosuch").values(type="X"))
        session.execute(delete(RootServiceRegistration).where(RootServiceRegistration.id < 0))
    assert generation(db) == before
    with db.transaction() as session:
        session.execute(delete(RootServiceRegistration).where(RootServiceRegistration.id < 0))
        session.execute(
            update(ObCluster).where(ObCluster.name == "obcluster").values(type="STANDBY")
        )
        session.execute(update(ObCluster).where(ObCluster.name == "nosuch").values(type="X"))
    assert generation(db) == before + 1
