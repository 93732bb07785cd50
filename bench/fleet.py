"""Fleet-scale benchmark (issue 18), run by hand: `python -m bench.fleet`.

Starts a real `obfleet serve` on loopback (SQLite in a temp dir, or --database-url), drives it
with the light keep-alive client in bench/client.py, and prints the rows of issue 18's table it
can measure: the fixed cost of an authenticated GET, register-only creates to task SUCCESSFUL,
the cluster and task lists over 1,000 records at the default page and at size=2000, and
GetObProxyConfig interleaved with list traffic. With --floor, the same rows of a bare FastAPI +
SQLAlchemy app doing the least work of each request's shape (bench/floor_app.py), side by side:
what the stack itself costs.

Every figure is a ratio to GET /api/v2/time measured in the same round, just before it, with
the same connections; each row is the median over rounds, with the spread (min-max). Beside
each figure: the server's CPU per request (from /proc) and the client's own CPU share, which
says whether the client could have been the limit. Every load loop is bounded in count and in
time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.client import Connection, Reply, basic
from tests.server import ServerProcess

PASSWORD = "Bench_Pass_12"
AUTH = basic("admin", PASSWORD)
TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent

Send = Callable[[Connection, int], Awaitable[Reply]]


class FloorProcess(ServerProcess):
    """bench/floor_app.py on loopback, started and stopped as an `obfleet serve` is: on its own
    SQLite file, or on tables of its own in the PostgreSQL database obfleet uses."""

    def __init__(self, data_dir: Path, *, database_url: str, async_db: bool) -> None:
        super().__init__(data_dir)
        self.database_url = database_url or f"sqlite:///{data_dir}/floor.db"
        self.async_db = async_db

    def launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bench.floor_app", "--port", str(self.port)]
        command += ["--password", PASSWORD, "--database-url", self.database_url]
        self.proc = subprocess.Popen(
            command + (["--async-db"] if self.async_db else []),
            env={**self.env, "PYTHONPATH": str(ROOT)},
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Phase:
    count: int
    seconds: float
    client_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def server_ms(self) -> float:
        return self.server_cpu * 1000 / self.count if self.count else 0.0

    @property
    def client_share(self) -> float:
        return self.client_cpu / self.seconds if self.seconds else 0.0


class Bench:
    """One server under measurement, with its connections; `label` names its code ("after",
    "before") when two are measured side by side."""

    def __init__(self, label: str, url: str, pid: int, concurrency: int, rounds: int) -> None:
        self.label = label
        self.url = url
        self.pid = pid
        self.rounds = rounds
        self.conns = [Connection(url) for _ in range(concurrency)]
        self.seq = [0]  # its clusters are bench_1, bench_2, ...
        self.creates = [create_send(self.seq)]

    async def load(
        self, sends: list[Send], *, requests: int, seconds: float, counted: int = 0
    ) -> Phase:
        """Connection i sends with sends[i % len(sends)] until `requests` are done in all or
        `seconds` have passed (in-flight requests finish). Counts the requests of the sends
        with index `counted` only."""
        counter = iter(range(requests))
        done = [0] * len(sends)
        deadline = time.perf_counter() + seconds

        async def worker(conn: Connection, which: int) -> None:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                (await sends[which](conn, i)).raise_for_status()
                done[which] += 1

        cpu0, srv0, t0 = time.process_time(), cpu_seconds(self.pid), time.perf_counter()
        await asyncio.gather(*(worker(c, n % len(sends)) for n, c in enumerate(self.conns)))
        elapsed = time.perf_counter() - t0
        return Phase(
            done[counted],
            elapsed,
            time.process_time() - cpu0,
            cpu_seconds(self.pid) - srv0,
        )

    async def close(self) -> None:
        for conn in self.conns:
            await conn.close()


@dataclass
class Row:
    what: str
    # Cost rows print time-rate / rate ("13.6x" = costs 13.6 /time requests); rate rows print
    # rate / time-rate, as issue 18's table does for creates and the config server.
    as_cost: bool
    ratios: list[float]
    rates: list[float]
    server_ms: list[float]
    client_share: list[float]
    base_rates: list[float]
    cpu_ratios: list[float]

    def line(self, label: str = "") -> str:
        med = statistics.median(self.ratios)
        spread = f"{min(self.ratios):.2f}-{max(self.ratios):.2f}"
        return (
            f"| {self.what}{label} | {med:.2f}x ({spread}) | "
            f"{statistics.median(self.rates):.1f}/s | "
            f"{statistics.median(self.server_ms):.2f} ms "
            f"({statistics.median(self.cpu_ratios):.1f}x /time's) | "
            f"{max(self.client_share) * 100:.0f}% | {statistics.median(self.base_rates):.0f}/s |"
        )


def time_send(conn: Connection, _i: int) -> Awaitable[Reply]:
    return conn.send(conn.prepare("GET", "/api/v2/time"))


def get(target: str, headers: dict[str, str] | None = None) -> Send:
    """A send of one fixed GET, its bytes prepared once per connection."""
    prepared: dict[int, bytes] = {}

    def send(conn: Connection, _i: int) -> Awaitable[Reply]:
        raw = prepared.get(id(conn))
        if raw is None:
            raw = prepared[id(conn)] = conn.prepare("GET", target, headers)
        return conn.send(raw)

    return send


async def rounds(
    benches: list[Bench],
    what: str,
    target: Callable[[Bench], list[Send]],
    *,
    as_cost: bool = True,
    requests: int = 2000,
    seconds: float = 2.0,
    baseline: Callable[[Bench], list[Send]] | None = None,
) -> None:
    """Rounds of the baseline then the target, each bounded by `requests` and `seconds`; with
    two servers, each round measures one then the other, so both see the same machine."""
    rows = {b.label: Row(what, as_cost, [], [], [], [], [], []) for b in benches}
    for _ in range(benches[0].rounds):
        for bench in benches:
            row = rows[bench.label]
            base_sends = baseline(bench) if baseline else [time_send]
            base = await bench.load(base_sends, requests=4000, seconds=2.0)
            measured = await bench.load(target(bench), requests=requests, seconds=seconds)
            ratio = base.rate / measured.rate if as_cost else measured.rate / base.rate
            row.ratios.append(ratio)
            row.rates.append(measured.rate)
            row.base_rates.append(base.rate)
            row.cpu_ratios.append(measured.server_ms / base.server_ms if base.server_ms else 0.0)
            row.server_ms.append(measured.server_ms)
            row.client_share.append(max(base.client_share, measured.client_share))
    for bench in benches:
        label = f" ({bench.label})" if len(benches) > 1 else ""
        print(rows[bench.label].line(label), flush=True)


def create_send(seq: list[int]) -> Send:
    """A register-only cluster create whose request ends when its task is SUCCESSFUL (polled
    every 10 ms, as a client that wants the outcome does)."""

    async def send(conn: Connection, _i: int) -> Reply:
        seq[0] += 1
        body = {
            "name": f"bench_{seq[0]}",
            "workMode": "CONFIG_URL",
            "obLinks": [{"clusterName": "obbench", "obClusterId": 1}],
        }
        reply = (
            await conn.request("POST", "/api/v2/obproxy/clusters", AUTH, body)
        ).raise_for_status()
        task = f"/api/v2/tasks/instances/{reply.json()['data']['id']}"
        poll = conn.prepare("GET", task, AUTH)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = (await conn.send(poll)).raise_for_status()
            status = answer.json()["data"]["status"]
            if status == "SUCCESSFUL":
                return answer
            if status == "FAILED":
                raise RuntimeError(f"{task} failed")
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{task} did not finish in 30 s")

    return send


OB_CLUSTER = {
    "name": "obbench",
    "obClusterId": 1,
    "proxyroPassword": "Bench_proxyro_1",
    "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
}
CONFIG = "/services?Action=GetObProxyConfig&User_ID=alibaba&UID=admin&ObproxyClusterName=bench_1"


async def measure(benches: list[Bench], args: argparse.Namespace) -> None:
    try:
        for bench in benches:
            await bench.conns[0].open()
            reply = await bench.conns[0].request(
                "POST", "/api/v2/ob/clusters/import", AUTH, OB_CLUSTER
            )
            reply.raise_for_status()
        hosts = get("/api/v2/compute/hosts", AUTH)
        await rounds(
            benches, "authenticated GET, empty table (GET /api/v2/compute/hosts)", lambda b: [hosts]
        )
        await rounds(
            benches,
            "register-only creates to task SUCCESSFUL (rate)",
            lambda b: b.creates,
            as_cost=False,
            requests=args.clusters // args.rounds,
            seconds=args.max_seconds,
        )
        if args.creates_only:
            return
        # Fill up to --clusters if the bounded rounds made fewer (not measured).
        for bench in benches:
            while bench.seq[0] < args.clusters:
                await bench.load(
                    bench.creates, requests=args.clusters - bench.seq[0], seconds=args.max_seconds
                )
        clusters = get("/api/v2/obproxy/clusters", AUTH)
        count = args.clusters
        await rounds(
            benches,
            f"GET /api/v2/obproxy/clusters, default page, {count} clusters",
            lambda b: [clusters],
        )
        tasks = get("/api/v2/tasks/instances", AUTH)
        await rounds(
            benches, f"GET /api/v2/tasks/instances, default page, {count} tasks", lambda b: [tasks]
        )
        for what, path in (("clusters", "obproxy/clusters"), ("tasks", "tasks/instances")):
            everything = get(f"/api/v2/{path}?size=2000", AUTH)
            await rounds(
                benches,
                f"{what}, size=2000 (all {count})",
                lambda b, everything=everything: [everything],
                requests=args.big_requests,
                seconds=args.max_seconds / 4,
            )
        config = get(CONFIG)
        await rounds(benches, "GetObProxyConfig alone (rate)", lambda b: [config], as_cost=False)
        # Half the connections list clusters (default page) throughout; the other half send
        # /time, then GetObProxyConfig: the rate of the second over the first's.
        await rounds(
            benches,
            "GetObProxyConfig, half the connections listing clusters (rate)",
            lambda b: [config, clusters],
            baseline=lambda b: [time_send, clusters],
            as_cost=False,
        )
    finally:
        for bench in benches:
            await bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--big-requests", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument(
        "--before",
        default="",
        help="a source tree's src/ (e.g. `git archive <commit> src | tar -x -C /tmp/before`) "
        "to measure side by side with this one, round by round",
    )
    parser.add_argument(
        "--floor",
        choices=("threads", "async", "both"),
        help="also measure bench/floor_app.py, the stack's floor for each row, round by round: "
        "its handlers' database work in a worker thread (as obfleet's), on the event loop "
        "through async drivers (aiosqlite must be installed for SQLite), or both",
    )
    parser.add_argument(
        "--creates-only", action="store_true", help="stop after the creates row (engine work)"
    )
    args = parser.parse_args()
    print(
        f"obfleet fleet benchmark (issue 18): {args.concurrency} keep-alive connections, "
        f"{args.rounds} rounds, {args.database_url or 'SQLite'}; ratio = median (min-max) "
        "against GET /api/v2/time measured just before in each round",
        flush=True,
    )
    print("| what | ratio to /time | rate | server CPU/request | client CPU (max) | /time rate |")
    print("|---|---|---|---|---|---|", flush=True)
    if args.database_url and args.before:
        raise SystemExit("--before runs on SQLite only (each obfleet its own metadb)")
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp, ExitStack() as stack:
        servers: list[tuple[str, ServerProcess]] = []
        for label, source in [("after", "")] + ([("before", args.before)] if args.before else []):
            env = {"OBFLEET_ADMIN_PASSWORD": PASSWORD, **({"PYTHONPATH": source} if source else {})}
            servers.append(
                (label, ServerProcess(Path(tmp) / label, database_url=args.database_url, env=env))
            )
        for label, async_db in (("floor", False), ("floor, async", True)):
            if args.floor == "both" or args.floor == ("async" if async_db else "threads"):
                floor = FloorProcess(
                    Path(tmp) / label.replace(", ", "-"),
                    database_url=args.database_url,
                    async_db=async_db,
                )
                servers.append((label, floor))
        benches = []
        for label, server in servers:
            stack.enter_context(server)
            assert server.proc is not None
            benches.append(Bench(label, server.url, server.proc.pid, args.concurrency, args.rounds))
        asyncio.run(measure(benches, args))


if __name__ == "__main__":
    main()
