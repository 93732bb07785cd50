"""Login flood benchmark, run by hand: `python -m bench.logins` (add --flood etc. to taste).

Starts a real `obfleet serve` on loopback (SQLite in a temp dir) and measures admin's requests
(GET /api/v2/ob/clusters with Basic auth, from 127.0.0.1) alone, then while `--flood` clients
send wrong passwords from 127.0.0.2: for admin (the pair is locked after five, then refused
cheaply), and for a new username each time (no lock helps: every guess costs a password
check, which the bounded check pool keeps from taking the server). Each line's latency is a
ratio to admin's alone, measured in the same run; the flood's answers are counted by status,
and any 5xx is reported. Every loop is bounded in count and in time.

The client shares the machine with the server, so its own CPU time is printed too: where it
is near the wall time, the client, not the server, is what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.harness import Result, drive
from tests.server import ServerProcess

PASSWORD = "Bench_Pass_12"
AUTH = ("admin", PASSWORD)
FLOOD_FROM = "127.0.0.2"
Guess = Callable[[int], tuple[str, str]]


async def flood(url: str, guess: Guess, concurrency: int, stop: asyncio.Event) -> Counter[int]:
    """Wrong passwords from FLOOD_FROM until `stop`, `concurrency` at a time; their statuses."""
    statuses: Counter[int] = Counter()
    transport = httpx.AsyncHTTPTransport(local_address=FLOOD_FROM)
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:

        async def worker(w: int) -> None:
            i = 0
            while not stop.is_set():
                response = await client.get(url, auth=guess(w * 1_000_000 + i))
                statuses[response.status_code] += 1
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return statuses


async def measured(
    name: str, url: str, guess: Guess | None, args: argparse.Namespace
) -> tuple[Result, Counter[int]]:
    """Admin's requests, with a flood of `guess` running meanwhile (None: no flood)."""

    async def admin(c: httpx.AsyncClient, _i: int) -> httpx.Response:
        return await c.get(url, auth=AUTH)

    stop = asyncio.Event()
    flooding = asyncio.create_task(
        flood(url, guess, args.flood, stop) if guess else asyncio.sleep(0, Counter())
    )
    if guess:
        await asyncio.sleep(args.warmup)  # the flood under way (and admin's pair locked)
    opts = {"requests": args.requests, "concurrency": args.concurrency}
    try:
        result = await drive(name, admin, **opts, max_seconds=args.max_seconds)
    finally:
        stop.set()
    return result, await flooding


def print_report(args: argparse.Namespace, rows: list[tuple[Result, Counter[int]]]) -> None:
    base = rows[0][0]
    print(
        f"obfleet login flood benchmark: admin's GET /api/v2/ob/clusters, {args.requests} "
        f"requests, {args.concurrency} concurrent, from 127.0.0.1; flood: {args.flood} "
        f"concurrent clients from {FLOOD_FROM}; SQLite, one server process"
    )
    print(f"{'admin requests':44} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs alone':>13}")
    for result, statuses in rows:
        ratio = result.pct(0.5) / base.pct(0.5)
        print(
            f"{result.name:44} {result.rps:7.0f} {result.pct(0.5):8.2f} "
            f"{result.pct(0.99):8.2f} {ratio:12.2f}x"
        )
        if statuses:
            errors = sum(n for status, n in statuses.items() if status >= 500)
            print(f"{'':4}flood answers: {dict(sorted(statuses.items()))}, 5xx: {errors}")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data", env={"OBFLEET_ADMIN_PASSWORD": PASSWORD})
        with server:
            url = f"{server.url}/api/v2/ob/clusters"
            cpu = time.process_time()
            rows = [
                await measured("alone", url, None, args),
                await measured(
                    "flood of wrong passwords for admin",
                    url,
                    lambda _i: ("admin", "Wrong_12"),
                    args,
                ),
                await measured(
                    "flood of wrong passwords, a new user each",
                    url,
                    lambda i: (f"guess{i}", "Wrong_12"),
                    args,
                ),
            ]
            cpu = time.process_time() - cpu
    print_report(args, rows)
    print(f"benchmark client CPU: {cpu:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--flood", type=int, default=40)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
