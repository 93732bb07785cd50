"""Lists of records the fleet benchmark does not make (issue 18), in-process: `python -m
bench.records`.

bench/fleet.py fills its metadb through the API with register-only cluster creates; hosts
would need reachable SSH servers, and the audit trail grows with every change. This inserts
`--hosts` hosts (every other one with a pinned host key) and `--events` audit events straight
into a SQLite metadb and measures, through the ASGI app without HTTP, the CPU of
`GET /api/v2/time` and of each list's default page and size=2000 page, interleaved: medians
of `--rounds` rounds of `--requests` requests each, the GC set as `obfleet serve` sets it.
With `--before <src>` the code before runs the same afterwards, in a process of its own, on a
copy of the same metadb (not interleaved: compare runs made back to back on a quiet machine).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PASSWORD = "Bench_Pass_12"
AUTH = b"Basic " + base64.b64encode(f"admin:{PASSWORD}".encode())
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
TARGETS = (
    "/api/v2/time",
    "/api/v2/compute/hosts",
    "/api/v2/compute/hosts?size=2000",
    "/api/v2/audit-events",
    "/api/v2/audit-events?size=2000",
)


def fill(app: Any, hosts: int, events: int) -> None:
    """The records, inserted as the API's own writes would leave them (no task ran)."""
    from sqlalchemy import insert

    from obfleet.store.models.audit import AuditEvent
    from obfleet.store.models.credentials import Credential
    from obfleet.store.models.hosts import Host

    start = datetime(2026, 12, 1, tzinfo=UTC)
    with app.state.ctx.db.transaction() as session:
        credential = Credential(
            name="bench",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret_encrypted="unused: no host is reached",
        )
        session.add(credential)
        session.flush()
        session.execute(
            insert(Host),
            [
                {
                    "name": f"node{n}",
                    "inner_ip_address": f"198.18.{n // 250}.{n % 250 + 1}",
                    "credential_id": credential.id,
                    "status": "ONLINE",
                    "host_key": HOST_KEY if n % 2 else None,
                    "operating_system": "CentOS",
                    "architecture": "x86_64",
                }
                for n in range(hosts)
            ],
        )
        session.execute(
            insert(AuditEvent),
            [
                {
                    "time": start + timedelta(seconds=n),
                    "username": "admin",
                    "client_address": "127.0.0.1",
                    "action": "create_obproxy_cluster",
                    "method": "POST",
                    "route": "/api/v2/obproxy/clusters",
                    "object_type": "OBPROXY_CLUSTER",
                    "object_id": str(n),
                    "status": 200,
                    "successful": True,
                    "trace_id": f"{n:016x}",
                    "task_ids": str(n),
                }
                for n in range(events)
            ],
        )


async def call(app: Any, target: str) -> None:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"authorization", AUTH)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"GET {target}: {statuses}")


async def measure(data_dir: Path, args: argparse.Namespace, fresh: bool) -> dict[str, float]:
    """Medians of the rounds' CPU per request, in microseconds, by target."""
    from obfleet.api.app import create_app
    from obfleet.config import Settings
    from obfleet.serving import settle_heap

    app = create_app(Settings(data_dir=data_dir, admin_password=PASSWORD), run_engine=False)
    spent: dict[str, list[float]] = {t: [] for t in TARGETS}
    async with app.router.lifespan_context(app):
        if fresh:
            fill(app, args.hosts, args.events)
        settle_heap()
        for target in TARGETS:
            await call(app, target)  # warm: statements compiled, logins read
        for _ in range(args.rounds):
            for target in TARGETS:
                requests = args.requests if "size=2000" not in target else args.requests // 20
                started = time.process_time()
                for _ in range(max(requests, 1)):
                    await call(app, target)
                spent[target].append((time.process_time() - started) / requests * 1e6)
    return {t: statistics.median(v) for t, v in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--before", default="", help="a source tree's src/ to measure too")
    parser.add_argument("--data-dir", default="", help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    import uvloop

    if args.data_dir:  # a child measuring the code before on the given metadb
        figures = uvloop.run(measure(Path(args.data_dir), args, fresh=False))
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory(prefix="obfleet-records-") as tmp:
        data = Path(tmp) / "after"
        after = uvloop.run(measure(data, args, fresh=True))
        columns = {"after": after}
        if args.before:
            shutil.copytree(data, Path(tmp) / "before")
            columns["before"] = before_figures(Path(tmp) / "before", args)
    print(
        f"in-process CPU per request, us (medians of {args.rounds} rounds), "
        f"{args.hosts} hosts, {args.events} audit events"
    )
    print("| GET | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for target in TARGETS:
        cells = [
            f"{c[target]:.0f} ({c[target] / c[TARGETS[0]]:.1f}x /time)" for c in columns.values()
        ]
        print(f"| `{target}` | " + " | ".join(cells) + " |")


def before_figures(data_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.records", "--data-dir", str(data_dir)]
    command += ["--rounds", str(args.rounds), "--requests", str(args.requests)]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{args.before}:{root}"}
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    main()
