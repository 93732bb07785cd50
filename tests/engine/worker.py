"""A test-only engine process: `python -m tests.engine.worker URL ADDRESS LEASE_SECONDS`.

Runs a TaskEngine on the metadb at URL (the test subtasks importable) until SIGTERM; prints
"ready" once the engine runs. Stands in for `obfleet serve` where only the engine matters.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from obfleet.engine import TaskEngine
from obfleet.store.db import Database


async def main(url: str, address: str, lease_seconds: float) -> None:
    db = Database(url)
    engine = TaskEngine(
        db,
        node_address=address,
        concurrency=8,
        lease_seconds=lease_seconds,
        poll_interval=0.1,
        stop_grace=2,
    )
    await engine.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await engine.stop()
    db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
