"""What metrics and the audit trail cost, run by hand: `python -m bench.observe`.

Starts four real `obfleet serve` processes on loopback (SQLite, a temp dir each), with
OBFLEET_METRICS and OBFLEET_AUDIT each off or on, and measures register-only cluster creates
finished per second (POST answered and its task SUCCESSFUL: an audited request, a counted task)
and GET /api/v2/obproxy/clusters (a counted, unaudited read). The load goes to the four servers
in turn, in short bursts (`--bursts` of each), so a noisy neighbour on a shared machine hurts
every setting alike; the rates are printed as ratios to the setting with both off, measured in
the same run. The client's own CPU time is printed too: if it nears the wall time, the client,
not the server, is the bottleneck. Every load loop is bounded in count and in time.

On a busy machine the side-by-side ratios carry that machine's noise; the last lines add what
each piece costs by itself, timed in this process: counting one request, and writing one audit
row (its own SQLite transaction), beside a metadb round trip (`SELECT 1`) as the yardstick.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.clusters import PASSWORD, finished_create
from bench.harness import Request, Result, drive
from obfleet.monitor.metrics import Metrics
from obfleet.records import audit
from obfleet.store.db import Database
from obfleet.store.migrate import upgrade
from tests.server import ServerProcess

AUTH = ("admin", PASSWORD)
SETTINGS = {
    "metrics off, audit off": {"OBFLEET_METRICS": "0", "OBFLEET_AUDIT": "0"},
    "metrics on,  audit off": {"OBFLEET_METRICS": "1", "OBFLEET_AUDIT": "0"},
    "metrics off, audit on": {"OBFLEET_METRICS": "0", "OBFLEET_AUDIT": "1"},
    "metrics on,  audit on": {"OBFLEET_METRICS": "1", "OBFLEET_AUDIT": "1"},
}
OB_CLUSTER = {
    "name": "obbench",
    "obClusterId": 1,
    "proxyroPassword": "Bench_proxyro_1",
    "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
}


def servers(stack: ExitStack, tmp: Path) -> Iterator[tuple[str, str]]:
    """(setting, base URL) of a started server per setting, each with the OB cluster to link."""
    for i, (label, env) in enumerate(SETTINGS.items()):
        home = tmp / str(i)
        home.mkdir()
        server = ServerProcess(home / "data", env={"OBFLEET_ADMIN_PASSWORD": PASSWORD, **env})
        stack.enter_context(server)
        httpx.post(
            f"{server.url}/api/v2/ob/clusters/import", auth=AUTH, json=OB_CLUSTER
        ).raise_for_status()
        yield label, server.url


def creates(base: str, offset: int) -> Request:
    async def create(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await finished_create(c, base, offset + i + 1)

    return create


def reads(base: str, pages: int) -> Request:
    async def list_clusters(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.get(
            f"{base}/api/v2/obproxy/clusters?page={i % pages + 1}&size=10", auth=AUTH
        )

    return list_clusters


def merge(name: str, parts: list[Result]) -> Result:
    return Result(
        name,
        sum(p.count for p in parts),
        sum(p.seconds for p in parts),
        [ms for p in parts for ms in p.latencies_ms],
    )


async def run(args: argparse.Namespace) -> None:
    measured: dict[tuple[str, str], list[Result]] = {}
    opts = {"concurrency": args.concurrency, "max_seconds": args.max_seconds}
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp, ExitStack() as stack:
        bases = dict(servers(stack, Path(tmp)))
        per_burst = args.creates // args.bursts
        for burst in range(args.bursts):
            for label, base in bases.items():
                # Each burst's names follow the last's (the warm-up request takes one more).
                make = creates(base, burst * (per_burst + 1))
                result = await drive("create", make, requests=per_burst, **opts)
                measured.setdefault((label, "create (register-only, task SUCCESSFUL)"), []).append(
                    result
                )
        for _burst in range(args.bursts):
            for label, base in bases.items():
                make = reads(base, max(1, args.creates // 10))
                result = await drive("GET", make, requests=args.requests // args.bursts, **opts)
                measured.setdefault((label, "GET /api/v2/obproxy/clusters"), []).append(result)
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    print(
        f"obfleet observability overhead: {args.bursts} interleaved bursts per setting, "
        f"{args.concurrency} concurrent clients, SQLite, one server process per setting; "
        f"client CPU {cpu:.1f} s of {wall:.1f} s"
    )
    print(
        f"{'setting':24} {'endpoint':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'rate vs off':>12}"
    )
    base_label = next(iter(SETTINGS))
    for (label, name), parts in sorted(measured.items(), key=lambda kv: kv[0][1]):
        r, base = merge(name, parts), merge(name, measured[(base_label, name)])
        print(
            f"{label:24} {name:42} {r.rps:8.1f} {r.pct(0.5):8.2f} {r.pct(0.99):8.2f} "
            f"{r.rps / base.rps:11.2f}x"
        )


def per_call_us(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


def pieces(tmp: Path) -> None:
    """Each piece's own cost, in microseconds a call."""
    metrics = Metrics()
    db = Database(f"sqlite:///{tmp / 'pieces.db'}")
    upgrade(db)
    change = audit.Change("create_cluster", "POST", "/api/v2/obproxy/clusters", 200, "admin")

    def write_row() -> None:
        with db.transaction() as session:
            audit.record(session, change)

    def round_trip() -> None:
        with db.session() as session:
            session.execute(text("SELECT 1"))

    count = per_call_us(lambda: metrics.request_answered("/r/{id}", "GET", 200, 0.01), 20000)
    print(f"counting one request (metrics): {count:.1f} us")
    print(f"one audit row, own transaction (SQLite): {per_call_us(write_row, 300):.0f} us")
    print(f"metadb round trip, SELECT 1 (SQLite): {per_call_us(round_trip, 300):.0f} us")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    asyncio.run(run(parser.parse_args()))
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp:
        pieces(Path(tmp))


if __name__ == "__main__":
    main()
