"""What the HTTP benchmarks share: a bounded load loop and a side-by-side report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


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
    name: str, make: Request, *, requests: int, concurrency: int, max_seconds: float
) -> Result:
    """Send at most `requests` requests from `concurrency` clients, for at most `max_seconds`.
    `make(client, -1)` is called once first, to warm up (connections, login cache)."""
    latencies: list[float] = []
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            response = await make(client, i)
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(timeout=30) as client:
        (await make(client, -1)).raise_for_status()
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, latencies)


def report(title: str, results: list[Result]) -> None:
    """Print each result, with its cost as a ratio to the first (the baseline) measured in the
    same run."""
    base = results[0]
    print(title)
    print(f"{'endpoint':52} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'rate vs base':>13}")
    for r in results:
        print(
            f"{r.name:52} {r.rps:8.0f} {r.pct(0.5):8.2f} {r.pct(0.99):8.2f} "
            f"{r.rps / base.rps:12.2f}x"
        )
