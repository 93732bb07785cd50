"""bench/floor_app.py answers every request bench/fleet.py sends it, in the shapes it reads,
with its database work in worker threads and on the event loop (async drivers)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.client import basic
from bench.floor_app import Floor, floor_app

AUTH = basic("admin", "Floor_Pass_1")


@pytest.mark.parametrize("async_db", [False, True], ids=["threads", "async"])
async def test_the_floor_answers_the_fleet_benchmarks_requests(
    tmp_path: Path, async_db: bool
) -> None:
    app = floor_app(Floor(f"sqlite:///{tmp_path}/floor.db", "Floor_Pass_1", async_db))
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://floor", headers=AUTH) as client,
    ):
        assert (await client.post("/api/v2/ob/clusters/import")).status_code == 200
        for n in range(12):
            body = {"name": f"c{n}", "workMode": "CONFIG_URL", "obLinks": [{"obClusterId": 1}]}
            created = (await client.post("/api/v2/obproxy/clusters", json=body)).json()
        task = (await client.get(f"/api/v2/tasks/instances/{created['data']['id']}")).json()
        assert task["data"]["status"] == "SUCCESSFUL"

        page = (await client.get("/api/v2/obproxy/clusters")).json()["data"]
        assert page["page"] == {"number": 1, "size": 10, "totalElements": 12}  # the COUNT
        assert [c["name"] for c in page["contents"]] == [f"c{n}" for n in range(10)]
        assert page["contents"][0]["obLinks"][0]["clusterName"] == "obbench"
        everything = (await client.get("/api/v2/tasks/instances?size=2000")).json()["data"]
        assert len(everything["contents"]) == everything["page"]["totalElements"] == 12
        assert [len(t["subtasks"]) for t in everything["contents"]] == [3] * 12
        hosts = (await client.get("/api/v2/compute/hosts")).json()["data"]
        assert hosts == {"contents": [], "page": {"number": 1, "size": 10, "totalElements": 0}}

        assert (await client.get("/api/v2/time")).status_code == 200
        assert (await client.get("/services?Action=GetObProxyConfig")).json()["Code"] == 200
        refused = await client.get("/api/v2/compute/hosts", headers=basic("admin", "wrong"))
        assert refused.status_code == 401
