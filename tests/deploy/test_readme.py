"""The README's walkthrough, run as written: its steps go through bash against a real
`obfleet serve` and real SSH test hosts with the stand-in OBProxy RPM, so a README that no
longer works fails here.

The README marks two fenced bash blocks: the settings (the reader's own facts, and how to start
obfleet), which the test replaces with its own value for each name the block sets, and the
steps, which it runs unchanged, stopping at the first failing command.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.deploy.conftest import PROXYRO_PASSWORD, ROOT_SERVER, fleet_server
from tests.server import ROOT
from tests.support.testhosts import HostLab

pytestmark = pytest.mark.hosts

README = ROOT / "README.md"
MARK = re.compile(r"<!-- walkthrough: (\w+)[^>]*-->\s*```bash\n(.*?)```", re.S)
ASSIGNMENT = re.compile(r"(?:^|\s)(?:export )?([A-Z_]+)=('[^']*'|\S+)")
# What the reader sets for obfleet itself rather than for the steps; the test's server gets
# its own (tests/deploy/conftest.py fleet_server).
SERVER_SETTINGS = {"OBFLEET_ADMIN_PASSWORD", "OBFLEET_ADVERTISE_URL"}


def walkthrough() -> dict[str, str]:
    blocks = dict(MARK.findall(README.read_text()))
    assert set(blocks) == {"settings", "steps"}, "the README marks its walkthrough's blocks"
    return blocks


def settings_named(block: str) -> dict[str, str]:
    """NAME=value, for each line that sets names (not one that runs a command with them)."""
    return {
        name: value.strip("'")
        for line in block.splitlines()
        if ASSIGNMENT.match(line)
        for name, value in ASSIGNMENT.findall(line)
    }


def test_the_settings_block_is_consistent_and_reachable_by_hosts():
    named = settings_named(walkthrough()["settings"])
    assert named["AUTH"] == f"admin:{named['OBFLEET_ADMIN_PASSWORD']}"
    # Hosts reach obfleet at the advertised URL: `make run` alone listens on loopback only.
    assert "make run HOST=0.0.0.0 &" in walkthrough()["settings"]


def test_the_walkthrough_installs_a_cluster(
    lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str
):
    hosts = lab.hosts[:2]
    for host in lab.hosts:
        host.reset()
    ip, rpc_port, sql_port = ROOT_SERVER
    server = fleet_server(lab, tmp_path / "data", database_url)
    ours = {
        "API": f"{server.url}/api/v2",
        "AUTH": f"admin:{ADMIN_PASSWORD}",
        "HOSTS": " ".join(h.ip for h in hosts),
        "SSH_KEY": str(lab.root_key_path),
        "RPM": str(standin_rpm),
        "OB_ROOT_SERVER": f"{ip}:{rpc_port}",
        "OB_SQL_PORT": str(sql_port),
        "PROXYRO_PASSWORD": PROXYRO_PASSWORD,
    }
    blocks = walkthrough()
    assert set(settings_named(blocks["settings"])) - SERVER_SETTINGS == set(ours)
    try:
        with server:
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", blocks["steps"]],
                env={**os.environ, **ours},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{server.output()[-3000:]}"
            (cluster,) = httpx.get(
                f"{server.url}/api/v2/obproxy/clusters?name=proxy1", headers=ADMIN
            ).json()["data"]["contents"]
    finally:
        for host in lab.hosts:
            host.reset()  # the stand-ins daemonized: stop them with the test
    assert sorted(s["ip"] for s in cluster["obproxies"]) == sorted(h.ip for h in hosts)
    assert {s["status"] for s in cluster["obproxies"]} == {"RUNNING"}
    assert re.search(r"^task \d+: SUCCESSFUL$", ran.stdout, re.M)
    assert "SUCCESSFUL Update obproxy status" in ran.stdout  # step 5's subtask list
