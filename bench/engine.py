"""Task engine benchmark, run by hand: `.venv/bin/python bench/engine.py [--pg URL] [--sqlite]`.

For each database, measured side by side in one run:
* baseline: bare committed write transactions per second (one-row UPDATE + COMMIT);
* throughput: no-op subtasks finished per second by one engine (independent subtasks);
* dispatch latency over 1,000 chains of 10: from an upstream's execute() returning to its
  downstream's execute() starting, which spans committing the upstream SUCCESSFUL and
  claiming the downstream RUNNING (p50 / p99);
* create to first RUNNING, on an idle engine: from the submitting transaction's start (the
  task's createTime) to its first subtask's execute() starting, one task at a time (p50 / p99).

`--noop`, `--chains` and `--creates` shorten a run on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field

from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url

from obfleet.engine import Flow, Subtask, SubtaskContext, TaskEngine, submit
from obfleet.store.db import Database, normalize_url
from obfleet.store.migrate import upgrade
from obfleet.store.models.tasks import EngineNode, SubtaskInstance, TaskInstance
from obfleet.timefmt import utcnow

NOOP_SUBTASKS = 3000
CHAINS, CHAIN_LENGTH = 1000, 10
CREATES = 300
CHAINS_IN_FLIGHT = (1, 10)  # one chain at a time: pure dispatch; ten: with contention
BASELINE_TRANSACTIONS = 2000


@dataclass
class Clock:
    started: dict[int, float] = field(default_factory=dict)
    ended: dict[int, float] = field(default_factory=dict)


class Noop(Subtask):
    async def execute(self, ctx: SubtaskContext) -> None:
        clock: Clock = ctx.resources
        clock.started[ctx.subtask_id] = time.perf_counter()
        clock.ended[ctx.subtask_id] = time.perf_counter()


def baseline_tps(db: Database) -> float:
    with db.transaction() as session:
        session.add(
            EngineNode(
                node_id="bench",
                address="bench",
                pid=0,
                start_time=utcnow(),
                heartbeat_time=utcnow(),
            )
        )
    began = time.perf_counter()
    for _ in range(BASELINE_TRANSACTIONS):
        with db.transaction() as session:
            session.execute(
                update(EngineNode)
                .where(EngineNode.node_id == "bench")
                .values(heartbeat_time=utcnow())
            )
    return BASELINE_TRANSACTIONS / (time.perf_counter() - began)


def unfinished(db: Database) -> int:
    with db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(TaskInstance)
                .where(TaskInstance.status != "SUCCESSFUL")
            )
            or 0
        )


async def until_done(db: Database) -> None:
    while await asyncio.to_thread(unfinished, db):
        await asyncio.sleep(0.005)


def submit_all(db: Database, flows: list[Flow]) -> None:
    with db.transaction() as session:
        for flow in flows:
            submit(session, flow, creator="bench")


async def throughput(db: Database, engine: TaskEngine, count: int) -> float:
    flows = []
    for i in range(count):
        flow = Flow(f"noop {i}")
        flow.add(Noop)
        flows.append(flow)
    submit_all(db, flows)
    began = time.perf_counter()
    engine.wake()
    await until_done(db)
    return count / (time.perf_counter() - began)


def clear_tasks(db: Database) -> None:
    with db.transaction() as session:
        session.execute(SubtaskInstance.__table__.delete())
        session.execute(TaskInstance.__table__.delete())


async def dispatch_latencies(
    db: Database, clock: Clock, chains: int, in_flight: int
) -> list[float]:
    clear_tasks(db)
    for _ in range(chains // in_flight):
        flows = []
        for i in range(in_flight):
            flow = Flow(f"chain {i}")
            flow.chain(*[Noop] * CHAIN_LENGTH)
            flows.append(flow)
        await asyncio.to_thread(submit_all, db, flows)
        await until_done(db)
    with db.session() as session:
        edges = session.execute(
            text("SELECT e.upstream_id, e.downstream_id FROM subtask_dependency e")
        ).all()
    return [clock.started[down] - clock.ended[up] for up, down in edges]


async def create_latencies(db: Database, clock: Clock, count: int) -> list[float]:
    """Submit one single-subtask task at a time on an idle engine: from the start of its
    submitting transaction to its subtask's execute()."""
    clear_tasks(db)
    latencies = []
    for i in range(count):
        flow = Flow(f"create {i}")
        flow.add(Noop)
        began = time.perf_counter()
        with db.transaction() as session:
            task_id = submit(session, flow, creator="bench")
        await until_done(db)  # nothing else on this loop meanwhile: the engine runs on it
        with db.session() as session:
            subtask_id = session.scalar(
                select(SubtaskInstance.id).where(SubtaskInstance.task_id == task_id)
            )
        latencies.append(clock.started[subtask_id] - began)
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def bench(label: str, url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    upgrade(db)
    tps = baseline_tps(db)
    clock = Clock()
    engine = TaskEngine(db, node_address="bench", resources=clock, concurrency=16)
    await engine.start()
    try:
        rate = await throughput(db, engine, args.noop)
        latencies = {
            n: await dispatch_latencies(db, clock, args.chains, n) for n in CHAINS_IN_FLIGHT
        }
        creates = await create_latencies(db, clock, args.creates)
    finally:
        await engine.stop()
        db.dispose()
    print(
        f"{label}: baseline {tps:,.0f} committed tx/s | no-op subtasks {rate:,.0f}/s "
        f"(ratio {rate / tps:.2f} subtasks per bare tx)"
    )
    for in_flight, values in latencies.items():
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(
            f"  dispatch latency, {args.chains} chains of {CHAIN_LENGTH}, {in_flight} in flight: "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(values):,} edges"
        )
    p50, p99 = percentile(creates, 50) * 1000, percentile(creates, 99) * 1000
    print(
        f"  create to first RUNNING, idle engine: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"over {len(creates):,} tasks"
    )


def scratch_database(server_url: str) -> tuple[str, str]:
    name = f"obfleet_bench_{os.getpid()}"
    admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_url(normalize_url(server_url)).set(database=name).render_as_string(
        hide_password=False
    ), name


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--mysql", default="", help="also run on this MySQL/MariaDB server")
    parser.add_argument("--noop", type=int, default=NOOP_SUBTASKS, help="no-op subtasks")
    parser.add_argument("--chains", type=int, default=CHAINS, help="chains of 10")
    parser.add_argument("--creates", type=int, default=CREATES, help="tasks created one by one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench("SQLite", f"sqlite:///{tmp}/bench.db", args))
    for label, server in (("PostgreSQL", args.pg), ("MySQL/MariaDB", args.mysql)):
        if server:
            url, name = scratch_database(server)
            try:
                asyncio.run(bench(label, url, args))
            finally:
                drop_database(server, name)


if __name__ == "__main__":
    main()
