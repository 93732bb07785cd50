"""Real engine processes: SIGKILL mid-subtask then restart; three replicas sharing work."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from obfleet.engine import Flow, TaskEngine, submit
from obfleet.engine.reads import subtask_log
from obfleet.engine.runner import EngineAlreadyRunning
from obfleet.store.db import Database
from obfleet.store.models.tasks import SubtaskInstance, TaskInstance
from tests.engine.conftest import submit_flow, task_view
from tests.engine.processes import wait_until
from tests.engine.subtasks import AppendLine, WaitForRelease
from tests.server import ServerProcess


def database_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def test_a_killed_server_resumes_its_task_after_restart(database: Database, tmp_path: Path) -> None:
    """A real `obfleet serve`, SIGKILLed in the middle of a subtask, then started again."""
    started, release = tmp_path / "started", tmp_path / "release"
    flow = Flow("survive SIGKILL")
    flow.set("started", str(started))
    flow.set("release", str(release))
    flow.chain(WaitForRelease)
    task_id = submit_flow(database, flow)
    server = ServerProcess(
        tmp_path / "data",
        database_url=database_url(database),
        env={"OBFLEET_ADMIN_PASSWORD": "Admin_Pass_12", "OBFLEET_ENGINE_LEASE_SECONDS": "2"},
    )
    try:
        server.start()
        wait_until(started.exists, 120, "the subtask to start")
        server.kill()  # SIGKILL in the middle of the running subtask
        server.start()
        wait_until(lambda: started.read_text() == "2\n", 120, "the subtask to run again")
        release.touch()
        wait_until(
            lambda: task_view(database, task_id)["status"] == "SUCCESSFUL",
            120,
            "the task to finish",
        )
    finally:
        release.touch()
        server.stop()
    sub = task_view(database, task_id)["subtasks"][0]
    assert (sub["status"], sub["runTime"]) == ("SUCCESSFUL", 2)
    with database.session() as session:
        log = subtask_log(session, task_id, sub["id"])
    assert log.count("############{EXECUTE}") == 2 and "released" in log


async def test_sqlite_refuses_a_second_engine(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("replicas are refused on SQLite only")
    first = TaskEngine(database, node_address="a")
    await first.start()
    try:
        with pytest.raises(EngineAlreadyRunning, match="SQLite allows one obfleet process"):
            await TaskEngine(database, node_address="b").start()
    finally:
        await first.stop()


TASKS, CHAIN = 300, 5


def test_three_replicas_share_the_work_and_survive_a_kill(
    database: Database, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """Three real `obfleet serve` processes on one metadb; one is SIGKILLed mid-run."""
    if database.dialect == "sqlite":
        pytest.skip("replicas share a PostgreSQL or MySQL-compatible metadb")
    out = tmp_path / "lines"
    url = database_url(database)
    for n in (1, 2, 3):
        server = ServerProcess(
            tmp_path / f"data{n}",
            database_url=url,
            env={
                "OBFLEET_ADMIN_PASSWORD": "Admin_Pass_12",
                "OBFLEET_ENGINE_LEASE_SECONDS": "2",
                "OBFLEET_ADVERTISE_URL": f"http://replica-{n}",
            },
        )
        servers.append(server.start())
    # Submitted once all three are up (each starts in turn), so all three share the work
    # from the first task on.
    with database.transaction() as session:
        for i in range(TASKS):
            flow = Flow(f"append {i}")
            flow.set("out", str(out))
            flow.set("pause", "0.005")
            flow.chain(*[AppendLine] * CHAIN)
            submit(session, flow, creator="admin")

    def lines() -> list[str]:
        return out.read_text().splitlines() if out.exists() else []

    wait_until(lambda: len(lines()) >= TASKS * CHAIN // 3, 180, "a third of the work")
    servers[0].kill()

    def finished() -> int:
        with database.session() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(TaskInstance)
                    .where(TaskInstance.status == "SUCCESSFUL")
                )
                or 0
            )

    wait_until(lambda: finished() == TASKS, 300, "every task to finish")

    with database.session() as session:
        run_times = {
            row.id: row.run_time
            for row in session.execute(select(SubtaskInstance.id, SubtaskInstance.run_time))
        }
        executors = set(session.scalars(select(SubtaskInstance.executor).distinct()))
    written = collections.Counter(tuple(map(int, line.split())) for line in lines())
    assert len(run_times) == TASKS * CHAIN
    assert max(written.values()) == 1, "an attempt wrote its line twice"
    for subtask_id, run_time in run_times.items():
        attempts = {a for (s, a) in written if s == subtask_id}
        assert run_time in attempts, f"subtask {subtask_id}: last attempt left no line"
        assert attempts <= set(range(1, run_time + 1))
    assert executors == {"http://replica-1", "http://replica-2", "http://replica-3"}
    assert any(run_time > 1 for run_time in run_times.values()), "the kill interrupted nothing"
