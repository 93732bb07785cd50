"""Killing a deployed OBProxy and bringing it back, and watching obfleet notice (its health
checks: RUNNING -> UNAVAILABLE -> RUNNING, `lastActiveTime`).

For any test on real hosts that needs an OBProxy to die or come back: run the fleet's server
with `HEALTH_ENV` so the checks run every second, `kill_obproxy` the process (SIGKILL, so it
leaves its pid file behind like a crash does), `wait_for_obproxy` until the API shows the
status, then `start_by_hand` (the same command line from the same directory, as obfleet's
start does) or an obfleet operation (restart) to bring it back.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.deploy.conftest import HOME, Fleet
from tests.support.testhosts import NetnsHost

# The server's health checks every second: a dead OBProxy (its port refuses at once) shows as
# UNAVAILABLE within a few seconds. A live one slowed by a busy machine gets 5 s to answer,
# so it is not taken for dead.
HEALTH_ENV = {"OBFLEET_HEALTH_INTERVAL": "1", "OBFLEET_HEALTH_TIMEOUT": "5"}


@dataclass(frozen=True)
class Launch:
    """A running OBProxy as its host sees it: pid, arguments from ./bin/obproxy on (the stand-in
    runs under python3, which comes first), and working directory."""

    pid: int
    argv: list[str]
    cwd: str


def running_obproxy(host: NetnsHost, home: str = HOME) -> Launch:
    pid = int(host.run(f"cat {home}/run/obproxy.pid", check=True).stdout.strip())
    raw = host.run(f"cat /proc/{pid}/cmdline", check=True).stdout
    argv = raw.split("\0")[:-1]
    cwd = host.run(f"readlink /proc/{pid}/cwd", check=True).stdout.strip()
    return Launch(pid, argv[argv.index("./bin/obproxy") :], cwd)


def _gone(host: NetnsHost, pid: int) -> bool:
    """No such process, or only its zombie (the host's init reaps daemons in its own time)."""
    stat = host.run(f"cat /proc/{pid}/stat")
    return stat.returncode != 0 or stat.stdout.rsplit(")", 1)[1].split()[0] == "Z"


def kill_obproxy(host: NetnsHost, home: str = HOME, timeout: float = 15) -> Launch:
    """SIGKILL the OBProxy of `home` on `host` and wait until it is gone; returns how it ran."""
    launch = running_obproxy(host, home)
    host.run(f"kill -KILL {launch.pid}", check=True)
    deadline = time.monotonic() + timeout
    while not _gone(host, launch.pid):
        assert time.monotonic() < deadline, f"pid {launch.pid} on {host.ip} survived SIGKILL"
        time.sleep(0.05)
    return launch


def start_by_hand(host: NetnsHost, launch: Launch) -> Launch:
    """Start OBProxy again as obfleet starts it (`cd <home> && LD_LIBRARY_PATH=<home>/lib
    ./bin/obproxy ...`, see obfleet/obproxy/cmdline.py); it daemonizes and the command returns
    once it listens. Returns the new process."""
    cwd = shlex.quote(launch.cwd)
    lib = shlex.quote(f"{launch.cwd}/lib")
    host.run(f"cd {cwd} && LD_LIBRARY_PATH={lib} {shlex.join(launch.argv)}", check=True)
    return running_obproxy(host, launch.cwd)


def obproxy_view(fleet: Fleet, cluster_name: str, ip: str) -> dict[str, Any]:
    """The obproxy on `ip` as the cluster API shows it."""
    (cluster,) = fleet.get(f"/api/v2/obproxy/clusters?name={cluster_name}")["contents"]
    (server,) = [s for s in cluster["obproxies"] if s["ip"] == ip]
    return server  # type: ignore[no-any-return]


def last_active(view: dict[str, Any]) -> datetime | None:
    shown = view["lastActiveTime"]
    return None if shown is None else datetime.fromisoformat(shown)


def wait_for_obproxy(
    fleet: Fleet,
    cluster_name: str,
    ip: str,
    status: str,
    *,
    active_after: datetime | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll the API until the obproxy shows `status` (and a lastActiveTime later than
    `active_after`, when given); returns its view. Fails after `timeout` s with the last view."""
    deadline = time.monotonic() + timeout
    while True:
        view = obproxy_view(fleet, cluster_name, ip)
        seen = last_active(view)
        if view["status"] == status and (
            active_after is None or (seen is not None and seen > active_after)
        ):
            return view
        assert time.monotonic() < deadline, (
            f"obproxy {ip} of {cluster_name} is not {status}"
            + (f" active after {active_after}" if active_after else "")
            + f" after {timeout}s: {view}"
        )
        time.sleep(0.2)
