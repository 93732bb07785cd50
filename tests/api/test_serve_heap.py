"""What `obfleet serve` does to the cyclic GC once it is up (serving.settle_heap): the objects
made to start are frozen, and the youngest generation is collected less often. Large pages
otherwise spent more time in full collections walking the whole app than in being built."""

from __future__ import annotations

import subprocess
import sys

# In a child: the test process's own GC is left as it is.
CHECK = """
import asyncio, gc, types
import uvicorn
from obfleet.serving import GC_YOUNG_THRESHOLD, Server, listen

async def app(scope, receive, send):
    pass

ctx = types.SimpleNamespace(extras={})
api = types.SimpleNamespace(state=types.SimpleNamespace(ctx=ctx))
server = Server(uvicorn.Config(app, lifespan="off", log_config=None), api)
assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] != GC_YOUNG_THRESHOLD

async def main():
    serving = asyncio.create_task(server.serve([listen("127.0.0.1", 0)]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD, gc.get_threshold()
    finally:
        server.should_exit = True
        await serving

asyncio.run(main())
print("checked")
"""


def test_the_started_service_freezes_what_it_made_and_collects_young_objects_less_often():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "checked"
