"""`task watch` and `--wait` when the task event stream is not there (an obfleet without it, or
OCP itself): the client polls the task instead. A real reverse proxy in front of a real
`obfleet serve` answers 404 for the stream and passes everything else through; a host that
cannot be reached gives a task that fails quickly, so the failure path shows too: exit 1 and
the failed step's log tail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import Client, client_for
from tests.server import ServerProcess, free_port
from tests.support.sshkeys import make_key

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class NoEventStream(BaseHTTPRequestHandler):
    """Forwards to the upstream obfleet, except the task event stream (404)."""

    upstream = ""
    seen: list[str]

    def _forward(self) -> None:
        self.seen.append(self.path)
        if self.path.split("?")[0].endswith("/events"):
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"Not Found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        answer = httpx.request(
            self.command, self.upstream + self.path, headers=headers, content=body, timeout=60
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in HOP_HEADERS | {"content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxied(server: ServerProcess) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (NoEventStream,), {"upstream": server.url, "seen": seen})
    proxy = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", seen
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(10)


def test_wait_polls_without_the_event_stream_and_fails_with_the_log(
    proxied: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = proxied
    client: Client = client_for(tmp_path, url)
    key = tmp_path / "key"
    key.write_text(make_key(tmp_path, "ed25519", None).private)
    r = client("credential", "add", "k", "--type", "HOST", "--username", "root",
               "--private-key-file", str(key))  # fmt: skip
    assert r.returncode == 0, r.stderr
    # Nothing listens on this port: the host's "Prepare host" task fails at once.
    r = client("host", "add", "127.0.0.1", "--credential", "k", "--ssh-port", str(free_port()),
               "--wait")  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("started task ")
    task_id = lines[0].split()[2].rstrip(":")
    assert any(line.endswith(": FAILED") and line.startswith("task ") for line in lines)
    assert "failed:" in r.stdout and "its log ends with:" in r.stdout
    assert any(p.endswith(f"/tasks/instances/{task_id}/events") for p in seen)  # tried
    polled = [p for p in seen if p.split("?")[0] == f"/api/v2/tasks/instances/{task_id}"]
    assert polled  # and then polled

    watched = client("task", "watch", task_id)
    assert watched.returncode == 1
    assert watched.stdout.splitlines()[-1] != ""
    assert "its log ends with:" in watched.stdout

    # Steering it: the failed subtask's log, a retry that fails again (its run count grows).
    shown = json.loads(client("task", "show", task_id, "-o", "json").stdout)
    (failed,) = [s for s in shown["subtasks"] if s["status"] == "FAILED"]
    log = client("task", "log", task_id, str(failed["id"]), "--lines", "3")
    assert log.returncode == 0 and 0 < len(log.stdout.splitlines()) <= 3
    retried = client("task", "retry", task_id, "--wait")
    assert retried.returncode == 1 and "retry of task" in retried.stderr
    again = json.loads(client("task", "show", task_id, "-o", "json").stdout)
    assert [s["runTime"] for s in again["subtasks"] if s["id"] == failed["id"]] == [
        failed["runTime"] + 1
    ]
