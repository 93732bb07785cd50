"""The README's walkthrough, run as written: its steps go through bash against a real
`obfleet serve` and real SSH test hosts with the stand-in OBProxy RPM, so a README that no
longer works fails here.

The README marks three fenced bash blocks: the settings (the reader's own facts, and how to
start obfleet), which the test replaces with its own value for each name the block sets, and two
walkthroughs of the same deploy, with curl (`steps`) and with the `obfleet` CLI (`cli`), each run
unchanged on a server of its own, stopping at the first failing command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.conftest import Client
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
    assert set(blocks) == {"settings", "steps", "cli"}, "the README marks its walkthrough's blocks"
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


@dataclass
class Walked:
    """What a walkthrough printed, and what obfleet has after it."""

    ran: subprocess.CompletedProcess[str]
    cluster: dict[str, Any]  # proxy1
    tasks: list[str]  # the names of every task, oldest first


def walk(
    steps: str,
    lab: HostLab,
    rpm: Path,
    tmp_path: Path,
    database_url: str,
    environ: Callable[[dict[str, str]], dict[str, str]] = lambda ours: {**os.environ, **ours},
) -> Walked:
    """Run `steps` with the test's settings against a server of its own and two test hosts;
    they must succeed and leave proxy1 RUNNING on those hosts."""
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
        "RPM": str(rpm),
        "OB_ROOT_SERVER": f"{ip}:{rpc_port}",
        "OB_SQL_PORT": str(sql_port),
        "PROXYRO_PASSWORD": PROXYRO_PASSWORD,
    }
    assert set(settings_named(walkthrough()["settings"])) - SERVER_SETTINGS == set(ours)
    try:
        with server, httpx.Client(base_url=server.url, headers=ADMIN) as api:
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", steps],
                env=environ(ours),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{server.output()[-3000:]}"
            (cluster,) = api.get("/api/v2/obproxy/clusters?name=proxy1").json()["data"]["contents"]
            tasks = api.get("/api/v2/tasks/instances?size=100&sort=id,asc").json()["data"]
    finally:
        for host in lab.hosts:
            host.reset()  # the stand-ins daemonized: stop them with the test
    assert sorted(s["ip"] for s in cluster["obproxies"]) == sorted(h.ip for h in hosts)
    assert {s["status"] for s in cluster["obproxies"]} == {"RUNNING"}
    return Walked(ran, cluster, [t["name"] for t in tasks["contents"]])


def test_the_walkthrough_installs_a_cluster(
    lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str
):
    walked = walk(walkthrough()["steps"], lab, standin_rpm, tmp_path, database_url)
    assert re.search(r"^task \d+: SUCCESSFUL$", walked.ran.stdout, re.M)
    assert "SUCCESSFUL Update obproxy status" in walked.ran.stdout  # step 5's subtask list


def test_the_cli_walkthrough_installs_the_same_and_applies_again_with_no_task(
    lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str
):
    """The CLI path, with `obfleet` found on PATH as the reader's .venv/bin puts it, and a
    config dir of its own (no OBFLEET_* from this process's environment)."""
    bin_dir = str(Path(sys.executable).parent)

    def environ(ours: dict[str, str]) -> dict[str, str]:
        env = Client(tmp_path / "config", ours).environ()
        return {**env, "PATH": f"{bin_dir}:{env['PATH']}"}

    walked = walk(walkthrough()["cli"], lab, standin_rpm, tmp_path, database_url, environ)
    assert (tmp_path / "config/obfleet/profiles.json").stat().st_mode & 0o777 == 0o600
    assert walked.cluster["workMode"] == "RS_LIST"
    assert [link["clusterName"] for link in walked.cluster["obLinks"]] == ["obcluster"]
    # Two hosts prepared, one install; the second apply planned nothing and submitted nothing.
    assert sorted(walked.tasks) == ["Install obproxy", "Prepare host", "Prepare host"]
    assert walked.ran.stderr.count("nothing to change") == 1
    # `cluster list`'s row
    assert re.search(r"^\d+ +proxy1 +RS_LIST +\S+ RUNNING, \S+ RUNNING ", walked.ran.stdout, re.M)
