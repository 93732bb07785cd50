"""API benchmark, run by hand: `python -m bench.api` (add --requests/--concurrency to taste).

Starts a real `obfleet serve` on loopback (SQLite in a temp dir), then measures requests/s and
p50/p99 latency for GET /api/v2/time (the baseline), GET /api/v2/ob/clusters over 1,000
records, and an authenticated POST (credential create), each also as a ratio to the baseline
measured in the same run. Every load loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bench.harness import drive, report
from obfleet.records.ob_clusters import RootServer, import_cluster
from obfleet.security.secrets import SecretBox
from obfleet.store.db import Database
from tests.server import ServerProcess

PASSWORD = "Bench_Pass_12"
AUTH = ("admin", PASSWORD)


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

            async def get_time(c: httpx.AsyncClient, _i: int) -> httpx.Response:
                return await c.get(f"{base}/api/v2/time")

            async def list_clusters(c: httpx.AsyncClient, _i: int) -> httpx.Response:
                return await c.get(
                    f"{base}/api/v2/ob/clusters?page={_i % 100 + 1}&size=10", auth=AUTH
                )

            async def post_credential(c: httpx.AsyncClient, i: int) -> httpx.Response:
                return await c.post(
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
    report(
        f"obfleet API benchmark: {args.requests} requests per endpoint, {args.concurrency} "
        "concurrent clients, SQLite, one server process (rate as a fraction of "
        "/api/v2/time's; its inverse is the cost ratio)",
        results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
