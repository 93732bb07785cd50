"""SQLite's writers in one process take turns on a lock of their own (store/db.py): every way
a write transaction ends gives the turn back, and concurrent writers all get through."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from obfleet.store.db import Database, writer_turn_held
from obfleet.store.migrate import upgrade
from obfleet.store.models.tasks import EngineNode
from obfleet.timefmt import utcnow


@pytest.fixture
def sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path}/writers.db")
    upgrade(db)
    return db


def node(name: str) -> EngineNode:
    now = utcnow()
    return EngineNode(node_id=name, address=name, pid=0, start_time=now, heartbeat_time=now)


def test_every_end_of_a_write_gives_the_turn_back(sqlite: Database) -> None:
    with sqlite.transaction() as session:
        session.add(node("committed"))
        session.flush()
        assert writer_turn_held(sqlite.engine)
    assert not writer_turn_held(sqlite.engine)

    with pytest.raises(RuntimeError), sqlite.transaction() as session:
        session.add(node("rolled back"))
        session.flush()
        raise RuntimeError("the handler failed")
    assert not writer_turn_held(sqlite.engine)

    with sqlite.session(write=True) as session:  # closed without commit or rollback
        session.execute(text("SELECT 1"))
        assert writer_turn_held(sqlite.engine)
    assert not writer_turn_held(sqlite.engine)

    with sqlite.session() as session:  # readers never take a turn
        session.execute(text("SELECT 1"))
        assert not writer_turn_held(sqlite.engine)


def test_concurrent_writers_all_commit(sqlite: Database) -> None:
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(20):
                with sqlite.transaction() as session:
                    session.add(node(f"{worker}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sqlite.session() as session:
        assert session.scalar(select(func.count()).select_from(EngineNode)) == 120
    assert not writer_turn_held(sqlite.engine)
