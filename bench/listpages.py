"""The big list pages in-process (issue 18), run by hand: `python -m bench.listpages`.

bench/fleet.py reads the same pages again and again: with kept rows (api/rowmemo.py), their best
case. This measures, without HTTP, the CPU of one `size=2000` page of clusters and of tasks
(read in a read session, built, encoded as the envelope encodes it) on one SQLite metadb of
register-only creates: warm (the rows kept by earlier reads), cold (the kept rows dropped before
each read, as after a change to every row) and, with `--before <src>`, the code before, on the
same metadb in a process of its own. Medians of `--reads` reads, the GC set as `obfleet serve`
sets it; load from other processes moves every figure alike, so compare within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from obfleet.api.app import create_app
from obfleet.api.envelope import EnvelopeResponse
from obfleet.api.paging import PageRequest, fetch_page, paged
from obfleet.api.routes.tasks import SORTABLE, _filtered
from obfleet.api.schemas.obproxy import ObproxyClusterOut
from obfleet.api.schemas.tasks import BasicTaskOut
from obfleet.config import Settings
from obfleet.records.obproxy_views import CLUSTER
from obfleet.security.passwords import hash_password
from obfleet.services import obproxy_clusters as clusters_service
from obfleet.serving import settle_heap
from obfleet.store.db import Database

try:  # not in the code before
    from obfleet.api.rowmemo import cluster_rows_kept, task_rows_kept
except ImportError:
    cluster_rows_kept = task_rows_kept = None

PASSWORD = "Bench_Pass_12"
BASE_URL = "http://127.0.0.1:8080"
EVERYTHING = PageRequest(page=1, size=2000, sort=None)
OB_CLUSTER = {
    "name": "obbench",
    "obClusterId": 1,
    "proxyroPassword": "Bench_proxyro_1",
    "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
}


def make_metadb(data_dir: Path, clusters: int) -> None:
    """An OceanBase cluster and `clusters` register-only creates, their tasks run to the end."""
    settings = Settings(
        data_dir=data_dir, admin_password_hash=hash_password(PASSWORD), secret_key="bench"
    )
    auth = ("admin", PASSWORD)
    with TestClient(create_app(settings)) as client:
        client.post("/api/v2/ob/clusters/import", auth=auth, json=OB_CLUSTER).raise_for_status()
        for n in range(1, clusters + 1):
            body = {"name": f"bench_{n}", "obLinks": [{"clusterName": "obbench", "obClusterId": 1}]}
            client.post("/api/v2/obproxy/clusters", auth=auth, json=body).raise_for_status()
        deadline = time.monotonic() + 300
        running = "/api/v2/tasks/instances?status=RUNNING&size=1"
        while client.get(running, auth=auth).json()["data"]["page"]["totalElements"]:
            if time.monotonic() > deadline:
                raise SystemExit("the creates' tasks did not finish in 300 s")
            time.sleep(0.2)


def cluster_page(db: Database, session: Session) -> Any:
    sortable = {"id": CLUSTER.id}
    rows, total = fetch_page(
        session, clusters_service.query(None), EVERYTHING, sortable, CLUSTER.id
    )
    kept = (cluster_rows_kept(db),) if cluster_rows_kept else ()
    return paged(ObproxyClusterOut.page(session, rows, BASE_URL, *kept), EVERYTHING, total)


def task_page(db: Database, session: Session) -> Any:
    stmt = _filtered(None, [], None, None, None, None, None, None)
    tasks, total = fetch_page(session, stmt, EVERYTHING, SORTABLE, SORTABLE["id"])
    kept = (task_rows_kept(db),) if task_rows_kept else ()
    return paged(BasicTaskOut.page(session, tasks, *kept), EVERYTHING, total)


def cpu_ms(
    db: Database, page: Callable[[Database, Session], Any], before: Callable[[], Any], reads: int
) -> float:
    """Median CPU of reading, building and encoding the page, `before` run ahead of each."""
    response = EnvelopeResponse.__new__(EnvelopeResponse)  # render() alone: no request facts
    times = []
    for _ in range(reads):
        before()
        start = time.process_time()
        with db.session() as session:
            response.render({"data": page(db, session)})
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def measure(data_dir: Path, reads: int) -> dict[str, float]:
    """This tree's figures on the metadb in `data_dir`: warm and cold with kept rows, else the
    one figure of the code before them."""
    db = Database(f"sqlite:///{data_dir / 'obfleet.db'}")
    settle_heap()
    figures: dict[str, float] = {}
    pages = (("clusters", cluster_page, cluster_rows_kept), ("tasks", task_page, task_rows_kept))
    for name, page, kept in pages:
        if kept is None:
            figures[f"{name}, before"] = cpu_ms(db, page, lambda: None, reads)
            continue
        figures[f"{name}, cold"] = cpu_ms(db, page, kept(db).clear, reads)
        figures[f"{name}, warm"] = cpu_ms(db, page, lambda: None, reads)
    return figures


def measured(data_dir: Path, reads: int, source: str) -> dict[str, float]:
    """`measure` in a process of its own (each tree's heap as fresh as the other's), with
    `source` (a tree's src/) first on its path when given."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join((source, "."))
    run = [sys.executable, "-m", "bench.listpages", "--measure", str(data_dir)]
    out = subprocess.run([*run, "--reads", str(reads)], env=env, check=True, capture_output=True)
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--before", default="", help="a source tree's src/, measured as well")
    parser.add_argument("--measure", default="", help=argparse.SUPPRESS)  # a metadb's dir
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.reads)))
        return
    with tempfile.TemporaryDirectory(prefix="obfleet-listpages-") as tmp:
        make_metadb(Path(tmp), args.clusters)
        figures = measured(Path(tmp), args.reads, "")
        if args.before:
            figures.update(measured(Path(tmp), args.reads, args.before))
    print(f"size=2000 pages of {args.clusters}, in-process CPU per read (median of {args.reads}):")
    for name, ms in sorted(figures.items()):
        print(f"  {name:<17} {ms:6.2f} ms")


if __name__ == "__main__":
    main()
