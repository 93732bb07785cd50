"""obfleet's health checks on a real test host: an OBProxy killed with SIGKILL shows as
UNAVAILABLE, and started again by hand shows as RUNNING with a newer lastActiveTime. The
server checks every second (liveness.HEALTH_ENV); one host is enough."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import Fleet, fleet_server, running_fleet
from tests.deploy.liveness import (
    HEALTH_ENV,
    kill_obproxy,
    last_active,
    running_obproxy,
    start_by_hand,
    wait_for_obproxy,
)
from tests.deploy.test_deploy import create, secrets_of
from tests.support.testhosts import HostLab

pytestmark = pytest.mark.hosts


@pytest.fixture(scope="module")
def lab(host_lab_factory: Callable[..., HostLab]) -> Iterator[HostLab]:
    lab = host_lab_factory(1)
    yield lab
    lab.close()


@pytest.fixture
def fleet(lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    """The deploy tests' fleet, its server checking the OBProxies every second."""
    for host in lab.hosts:
        host.reset()
    server = fleet_server(lab, tmp_path / "data", database_url, env=HEALTH_ENV)
    with running_fleet(server, lab, standin_rpm, database_url) as fleet:
        yield fleet
    for host in lab.hosts:
        host.reset()


def test_a_killed_obproxy_is_unavailable_and_running_again_once_restarted(fleet: Fleet) -> None:
    (host,) = fleet.hosts
    fleet.succeeded(create(fleet, "pc_health", "RS_LIST", [host])["id"])
    installed = wait_for_obproxy(fleet, "pc_health", host.ip, "RUNNING")
    # A heartbeat proves the checks log in to this OBProxy with its real password.
    alive = wait_for_obproxy(
        fleet, "pc_health", host.ip, "RUNNING", active_after=last_active(installed)
    )

    launch = kill_obproxy(host)
    down = wait_for_obproxy(fleet, "pc_health", host.ip, "UNAVAILABLE")
    went_down_at = last_active(down)
    assert went_down_at is not None and went_down_at >= last_active(alive)  # type: ignore[operator]

    restarted = start_by_hand(host, launch)
    assert restarted.pid != launch.pid and restarted.argv == launch.argv
    up = wait_for_obproxy(fleet, "pc_health", host.ip, "RUNNING", active_after=went_down_at)
    assert up["operateStatus"] == "NORMAL"
    assert running_obproxy(host).pid == restarted.pid

    log = fleet.server.output()
    label = f"obproxy {up['id']} ({host.ip}:{up['sqlPort']}, cluster pc_health)"
    assert log.count(f"{label} is UNAVAILABLE (was RUNNING): ") == 1, log
    assert log.count(f"{label} is RUNNING (was UNAVAILABLE): ") == 1, log
    for secret in secrets_of(fleet, "pc_health"):
        assert secret not in log
