"""OBProxy cluster benchmark, run by hand: `python -m bench.clusters`.

Through a real `obfleet serve` over loopback (SQLite in a temp dir): register-only cluster
creates finished per second (POST answered and its task SUCCESSFUL), and GetObProxyConfig
requests per second, each as a ratio to GET /api/v2/time measured in the same run. Every load
loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import drive, report
from tests.server import ServerProcess

PASSWORD = "Bench_Pass_12"
AUTH = ("admin", PASSWORD)


async def finished_create(client: httpx.AsyncClient, base: str, i: int) -> httpx.Response:
    """Create a cluster with no hosts and wait for its task to end; the answer is the final
    task view, so a failed task fails the benchmark."""
    response = await client.post(
        f"{base}/api/v2/obproxy/clusters",
        auth=AUTH,
        json={
            "name": f"bench_{i + 1}",
            "workMode": "CONFIG_URL",
            "obLinks": [{"clusterName": "obbench", "obClusterId": 1}],
        },
    )
    response.raise_for_status()
    task_id = response.json()["data"]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = await client.get(f"{base}/api/v2/tasks/instances/{task_id}", auth=AUTH)
        status = task.json()["data"]["status"]
        if status == "SUCCESSFUL":
            return task
        if status == "FAILED":
            raise RuntimeError(f"task {task_id} failed")
        await asyncio.sleep(0.005)
    raise RuntimeError(f"task {task_id} did not finish in 30 s")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data", env={"OBFLEET_ADMIN_PASSWORD": PASSWORD})
        with server:
            base = server.url
            httpx.post(
                f"{base}/api/v2/ob/clusters/import",
                auth=AUTH,
                json={
                    "name": "obbench",
                    "obClusterId": 1,
                    "proxyroPassword": "Bench_proxyro_1",
                    "rootServers": [
                        {"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}
                    ],
                },
            ).raise_for_status()
            opts = {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "max_seconds": args.max_seconds,
            }

            async def get_time(c: httpx.AsyncClient, _i: int) -> httpx.Response:
                return await c.get(f"{base}/api/v2/time")

            async def create(c: httpx.AsyncClient, i: int) -> httpx.Response:
                return await finished_create(c, base, i)

            async def proxy_config(c: httpx.AsyncClient, _i: int) -> httpx.Response:
                return await c.get(
                    f"{base}/services",
                    params={
                        "Action": "GetObProxyConfig",
                        "User_ID": "alibaba",
                        "UID": "admin",
                        "ObproxyClusterName": "bench_0",
                    },
                )

            results = [
                await drive("GET /api/v2/time", get_time, **opts),
                await drive(
                    "POST /api/v2/obproxy/clusters, task SUCCESSFUL",
                    create,
                    **{**opts, "requests": args.creates},
                ),
                await drive("GET /services?Action=GetObProxyConfig", proxy_config, **opts),
            ]
    report(
        f"obfleet cluster benchmark: {args.concurrency} concurrent clients, SQLite, one "
        "server process (rate as a fraction of /api/v2/time's)",
        results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
