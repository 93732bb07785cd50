"""API benchmark, run by hand: `python -m bench.api` (add --requests/--concurrency to taste).

Starts a real `obfleet serve` on loopback (SQLite in a temp dir), then measures requests/s and
p50/p99 latency for GET /api/v2/time (the baseline), GET /api/v2/ob/clusters over 1,000
records, and an authenticated POST (credential create), each also as a ratio to the baseline
measured in the same run. Every load loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from tests.server import ServerProcess

from obfleet.security.secrets import SecretBox
from obfleet.services.ob_clusters import RootServer, import_cluster
from obfleet.store.db import Database

PASSWORD = "Bench_pass_1"
AUTH = ("admin", PASSWORD)


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    name: str,
    make: Callable[[httpx.AsyncClient, int], object],
    *,
    requests: int,
    concurrency: int,
    max_seconds: float,
) -> Result:
    latencies: list[float] = []
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            response = await make(client, i)  # type: ignore[misc]
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(timeout=30) as client:
        await make(client, -1)  # warm up (and fill the login cache)
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, latencies)


def seed(data_dir: Path, clusters: int) -> None:
    db = Database(f"sqlite:///{data_dir / 'obfleet.db'}")
    box = SecretBox(Fernet.generate_key())  # no secrets are stored by the seed
    with db.transaction() as session:
        for i in range(clusters):
            import_cluster(
                session,
                box,
                name=f"bench_{i}",
                ob_cluster_id=i + 1,
                type="PRIMARY",
                root_servers=[RootServer(f"198.18.0.{i % 200 + 2}:2882", "LEADER", 2881)],
                ob_version="4.2.1.0",
                proxyro_credential_id=None,
                proxyro_password=None,
                creator="bench",
            )
    db.dispose()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp:
        data = Path(tmp) / "data"
        server = ServerProcess(data, env={"OBFLEET_ADMIN_PASSWORD": PASSWORD})
        with server:  # first start creates the schema
            pass
        seed(data, args.clusters)
        with server:
            base = server.url
            opts = {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "max_seconds": args.max_seconds,
            }

            def get_time(c: httpx.AsyncClient, _i: int) -> object:
                return c.get(f"{base}/api/v2/time")

            def list_clusters(c: httpx.AsyncClient, _i: int) -> object:
                return c.get(f"{base}/api/v2/ob/clusters?page={_i % 100 + 1}&size=10", auth=AUTH)

            def post_credential(c: httpx.AsyncClient, i: int) -> object:
                return c.post(
                    f"{base}/api/v2/credentials",
                    auth=AUTH,
                    json={
                        "name": f"bench_{i + 1}",
                        "targetType": "OB_CLUSTER",
                        "username": "proxyro",
                        "password": "Bench_secret_1",
                    },
                )

            results = [
                await drive("GET /api/v2/time", get_time, **opts),
                await drive(
                    f"GET /api/v2/ob/clusters (pages of 10 of {args.clusters})",
                    list_clusters,
                    **opts,
                ),
                await drive("POST /api/v2/credentials (Basic auth)", post_credential, **opts),
            ]
    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    base = results[0]
    print(
        f"obfleet API benchmark: {args.requests} requests per endpoint, "
        f"{args.concurrency} concurrent clients, SQLite, one server process"
    )
    print(f"{'endpoint':48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cost vs time':>13}")
    for r in results:
        ratio = base.rps / r.rps
        print(f"{r.name:48} {r.rps:8.0f} {r.pct(0.5):8.2f} {r.pct(0.99):8.2f} {ratio:12.2f}x")
    print(f"(median of all latencies: {statistics.median(base.latencies_ms):.2f} ms baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
