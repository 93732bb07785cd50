"""A real `obfleet serve` process for end-to-end tests: started on a free loopback port, its
output kept in a file, stopped (or killed) and reaped by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# One key for every obfleet a test starts, in-process or not: replicas on one metadb must share
# it (they refuse to start otherwise).
SECRET_KEY = "test-secret-key"


# Ports this process was given. The OS hands a released port out again, and tests record
# ports (a host's SSH port, an obproxy's SQL port) whose records must not meet.
_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, and one this process has not been given before."""
    with bound_to_fresh_port(host) as s:
        return int(s.getsockname()[1])


def listener_on_fresh_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket that accepts nobody, on a port this process has not been given before."""
    listener = bound_to_fresh_port(host)
    listener.listen(8)
    return listener


def bound_to_fresh_port(host: str) -> socket.socket:
    """A socket bound to a port of `host` this process has not been given before."""
    seen: list[socket.socket] = []  # held open meanwhile, so the OS picks another
    try:
        while True:
            sock = socket.socket()
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return sock
            seen.append(sock)
    finally:
        for sock in seen:
            sock.close()


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str = "",
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "OBFLEET_DATA_DIR": str(data_dir),
            "OBFLEET_DATABASE_URL": database_url,
            "OBFLEET_SECRET_KEY": SECRET_KEY,
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (several started at once)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "obfleet",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> ServerProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"obfleet serve exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/api/v2/time", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"obfleet serve did not answer in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
