"""Replica scaling on PostgreSQL (issue 18), run by hand: `python -m bench.replicas`.

Starts 1, then 3 real `obfleet serve` replicas on one PostgreSQL metadb (a database of its own,
dropped at the end) and drives register-only creates to task SUCCESSFUL through them, each
keep-alive connection pinned to one replica round-robin (as a load balancer in front would).
A create's task may run on any replica: the engines share the metadb's READY subtasks.

This machine has 2 cores for PostgreSQL, the replicas and the client. To see how throughput
grows with replicas when each has its own CPU and the metadb has spare (the ≥4-core case), the
`--replica-cpu` run gives each replica the same small CPU quota in a cgroup of its own
(cgroup v1 `cpu.cfs_quota_us`): 3 x 0.3 core plus PostgreSQL fit in 2 cores, so the replicas,
not the machine, are the limit, as they would be on a bigger one. Without it every process
shares the 2 cores and the figure says what this machine does.

Printed per run: creates/s, the ratio to 1 replica, the CPU each replica and PostgreSQL (the
backends serving the bench's database) spent per create, the backends started during the run,
PostgreSQL's commits and rollbacks per create (pg_stat_database), and the bare commit rate of
the metadb measured in the same run (one-row UPDATE + COMMIT, one connection): with those, the
creates/s at which the metadb itself becomes the limit. Every load loop is bounded in count and
time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.client import Connection
from bench.fleet import AUTH, OB_CLUSTER, PASSWORD, Send, cpu_seconds, create_send
from tests.server import ServerProcess

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


@dataclass
class Run:
    replicas: int
    creates: int
    seconds: float
    replica_cpu: list[float]
    postgres_cpu: float
    counts: DatabaseCounts

    @property
    def rate(self) -> float:
        return self.creates / self.seconds

    def ms_per_create(self, cpu: float) -> float:
        return cpu * 1000 / self.creates if self.creates else 0.0


class CpuQuota:
    """A cgroup (v1) holding a process to `cores` of CPU time; removed on exit."""

    def __init__(self, name: str, cores: float) -> None:
        self.path = CGROUP_CPU / name
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(cores * PERIOD_US)))

    def hold(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))  # every thread of the process

    def remove(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (CGROUP_CPU / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def backend_cpu(engine: Engine, database: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend connected to `database`, by pid. Only the bench's
    database: summing every postgres process counted other clients of the same server (this
    machine's test runs) as the bench's, which had made PostgreSQL's CPU per create look as if
    it grew tenfold with three replicas."""
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
            {"d": database},
        ).scalars()
        found: dict[int, float] = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                found[pid] = cpu_seconds(pid)
        return found


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """The backends' CPU between two readings: a backend new since `before` counts whole (one
    that came and went between them is missed: the replicas' pools keep theirs)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass(frozen=True)
class DatabaseCounts:
    """pg_stat_database's counters for one database."""

    commits: int
    rollbacks: int  # read sessions end with ROLLBACK: the pollers' reads are mostly here
    sessions: int  # backends started (connection churn costs the server a fork each)

    @classmethod
    def read(cls, engine: Engine, database: str) -> DatabaseCounts:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database "
                    "WHERE datname = :d"
                ),
                {"d": database},
            ).one()
        return cls(int(row[0]), int(row[1]), int(row[2]))

    def __sub__(self, other: DatabaseCounts) -> DatabaseCounts:
        return DatabaseCounts(
            self.commits - other.commits,
            self.rollbacks - other.rollbacks,
            self.sessions - other.sessions,
        )


def bare_commit_rate(url: str, count: int = 2000) -> float:
    """One-row UPDATE + COMMIT per transaction on one connection: the metadb's own limit."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_commit (id int PRIMARY KEY, n int)"))
            conn.execute(text("INSERT INTO bench_commit VALUES (1, 0)"))
        began = time.perf_counter()
        with engine.connect() as conn:
            for _ in range(count):
                conn.execute(text("UPDATE bench_commit SET n = n + 1 WHERE id = 1"))
                conn.commit()
        return count / (time.perf_counter() - began)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_commit"))
        engine.dispose()


@contextlib.contextmanager
def fresh_database(admin_url: str, name: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def drive(urls: list[str], send: Send, connections: int, creates: int, seconds: float) -> int:
    """Creates through `connections` connections spread over the replicas; how many finished."""
    conns = [Connection(urls[n % len(urls)]) for n in range(connections)]
    counter = iter(range(creates))
    done = [0]
    deadline = time.perf_counter() + seconds

    async def worker(conn: Connection) -> None:
        for _ in counter:
            if time.perf_counter() > deadline:
                return
            await send(conn, 0)
            done[0] += 1

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    return done[0]


async def import_ob_cluster(url: str) -> None:
    conn = Connection(url)
    try:
        (
            await conn.request("POST", "/api/v2/ob/clusters/import", AUTH, OB_CLUSTER)
        ).raise_for_status()
    finally:
        await conn.close()


def one_run(
    url: str, database: str, replicas: int, cores: float | None, args: argparse.Namespace
) -> Run:
    with tempfile.TemporaryDirectory(prefix="obfleet-replicas-") as tmp:
        servers = [
            ServerProcess(
                Path(tmp) / f"replica{n}",
                database_url=url,
                env={"OBFLEET_ADMIN_PASSWORD": PASSWORD},
            )
            for n in range(replicas)
        ]
        quotas: list[CpuQuota] = []
        try:
            # All at once on the empty metadb, with the same secret key (tests/server.py's).
            for server in servers:
                server.launch()
            for server in servers:
                server.wait_ready(timeout=60)
            pids = [s.proc.pid for s in servers if s.proc is not None]
            if cores is not None:
                for n, pid in enumerate(pids):
                    quotas.append(CpuQuota(f"obfleet-bench-replica{n}", cores))
                    quotas[-1].hold(pid)
            urls = [s.url for s in servers]
            asyncio.run(import_ob_cluster(urls[0]))
            # Warm up every replica (first logins, statement caches) before measuring.
            send = create_send([0])  # names bench_1, bench_2, ... across both drives
            asyncio.run(drive(urls, send, len(urls) * 2, len(urls) * 4, 30))
            engine = create_engine(url)
            try:
                cpu0 = [cpu_seconds(pid) for pid in pids]
                pg0, counts0 = backend_cpu(engine, database), DatabaseCounts.read(engine, database)
                began = time.perf_counter()
                done = asyncio.run(drive(urls, send, args.connections, args.creates, args.seconds))
                elapsed = time.perf_counter() - began
                pg1, counts1 = backend_cpu(engine, database), DatabaseCounts.read(engine, database)
                cpu1 = [cpu_seconds(pid) for pid in pids]
            finally:
                engine.dispose()
            return Run(
                replicas,
                done,
                elapsed,
                [b - a for a, b in zip(cpu0, cpu1, strict=True)],
                cpu_between(pg0, pg1),
                counts1 - counts0,
            )
        finally:
            for server in servers:
                server.stop()
            for quota in quotas:
                quota.remove()


def report(label: str, runs: list[Run], commit_rate: float) -> None:
    base = runs[0].rate
    print(f"\n{label}")
    print(
        "| replicas | creates/s | vs 1 replica | replica CPU per create (each) | "
        "PostgreSQL CPU per create | commits per create | rollbacks (reads) per create | "
        "backends started | metadb limit (creates/s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        each = ", ".join(f"{run.ms_per_create(c):.1f}" for c in run.replica_cpu)
        per_create = run.counts.commits / run.creates if run.creates else 0.0
        reads = run.counts.rollbacks / run.creates if run.creates else 0.0
        limit = commit_rate / per_create if per_create else 0.0
        print(
            f"| {run.replicas} | {run.rate:.1f} | {run.rate / base:.2f}x | {each} ms | "
            f"{run.ms_per_create(run.postgres_cpu):.1f} ms | {per_create:.1f} | {reads:.1f} | "
            f"{run.counts.sessions} | {limit:.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--creates", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--replica-cpu",
        type=float,
        default=0.3,
        help="cores per replica in the simulated run (0 to skip that run)",
    )
    args = parser.parse_args()
    name = "obfleet_bench_replicas"
    with fresh_database(args.pg, name) as url:
        commit_rate = bare_commit_rate(url)
    print(f"PostgreSQL bare commit rate (one connection): {commit_rate:.0f}/s")
    plans: list[tuple[str, float | None]] = [("all sharing the 2 cores", None)]
    if args.replica_cpu:
        label = f"each replica held to {args.replica_cpu} core (simulated bigger machine)"
        plans.append((label, args.replica_cpu))
    for label, cores in plans:
        runs = []
        for replicas in args.replicas:
            with fresh_database(args.pg, name) as url:
                runs.append(one_run(url, name, replicas, cores, args))
        report(label, runs, commit_rate)


if __name__ == "__main__":
    main()
