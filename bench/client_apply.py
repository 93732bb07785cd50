"""`obfleet apply` against the same deploy driven by curl-like calls, run by hand as root:
`python -m bench.client_apply` (--hosts 16 by default).

A real `obfleet serve` (SQLite in a temp dir) and N test hosts (network namespaces with sshd,
tests/support). Two OBProxy clusters go onto the same N hosts, each with a package and ports of
its own: one by POST /api/v2/obproxy/clusters and polling the task (the curl path, as
bench/deploy.py does it), one by `obfleet apply -f fleet.yaml --yes` run as a user runs it
(its output piped: plain lines). Printed: the wall time of each to SUCCESSFUL and their ratio,
the time `obfleet diff` takes to plan (and, of that, the command's own start-up, measured by
`obfleet apply --schema`, which reads nothing), the client's CPU, and what the hosts and the
server used meanwhile.

Bounded: two deployments, each given --timeout seconds; every namespace, process and file is
removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.deploy import Measure, Round, deploy, measuring, own_children_cpu, row
from tests.conftest import ADMIN_PASSWORD
from tests.deploy.conftest import OB_CLUSTER, Fleet, fleet_server, running_fleet
from tests.standin.rpm import build_standin_rpm
from tests.support.testhosts import HostLab


def obfleet(url: str, config: Path, *args: str, timeout: float) -> tuple[float, float, str]:
    """Run `obfleet args` as a user would: (wall seconds, its CPU seconds, its stdout)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBFLEET_")},
        "XDG_CONFIG_HOME": str(config),
        "OBFLEET_URL": url,
        "OBFLEET_USER": "admin",
        "OBFLEET_PASSWORD": ADMIN_PASSWORD,
    }
    cpu = own_children_cpu()
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "obfleet", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1) or (args[0] == "apply" and done.returncode):
        raise RuntimeError(f"obfleet {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return wall, own_children_cpu() - cpu, done.stdout


def fleet_file(fleet: Fleet, path: Path, rnd: Round, version: str) -> Path:
    sql_port, exporter_port = rnd.ports
    spec = {
        "obproxyClusters": [
            {
                "name": "applied",
                "mode": "RS_LIST",
                "obClusters": [OB_CLUSTER],
                "hosts": [h.ip for h in fleet.hosts],
                "sqlPort": sql_port,
                "exporterPort": exporter_port,
                "version": version,
            }
        ]
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def shown_version(fleet: Fleet, file_name: str) -> str:
    packages = fleet.get("/api/v2/software-packages?size=2000")["contents"]
    (package,) = [p for p in packages if p["fileName"] == file_name]
    return f"{package['version']}-{package['buildNumber']}"


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-apply-") as tmp:
        root = Path(tmp)
        curl_rpm, apply_rpm = (
            build_standin_rpm(root / f"rpm{i}", version=f"4.2.3.{i}") for i in (1, 2)
        )
        lab = HostLab(args.hosts)
        try:
            lab.start()
            server = fleet_server(lab, root / "data")
            with running_fleet(server, lab, curl_rpm) as fleet:
                assert server.proc is not None
                r = fleet.api.post(
                    "/api/v2/software-packages",
                    files={"file": (apply_rpm.name, apply_rpm.read_bytes())},
                )
                r.raise_for_status()
                print(f"{len(lab.hosts)} test hosts; {os.cpu_count()} CPUs, "
                      f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
                curl_round = Round(1, curl_rpm.name, "4.2.3.1")
                with measuring(server.proc.pid, fleet.hosts) as curl:
                    curl.wall, curl.task = deploy(
                        fleet, "curl", fleet.hosts, curl_round, args.timeout
                    )
                spec = fleet_file(
                    fleet, root / "fleet.yaml", Round(2, apply_rpm.name, "4.2.3.2"),
                    shown_version(fleet, apply_rpm.name),
                )  # fmt: skip
                config = root / "config"
                start_wall, _, _ = obfleet(server.url, config, "apply", "--schema", timeout=60)
                plan_wall, plan_cpu, _ = obfleet(
                    server.url, config, "diff", "-f", str(spec), timeout=120
                )
                with measuring(server.proc.pid, fleet.hosts) as applied:
                    applied.wall, client_cpu, _ = obfleet(
                        server.url, config, "apply", "-f", str(spec), "--yes",
                        timeout=args.timeout,
                    )  # fmt: skip
            report(curl, applied, start_wall, plan_wall, plan_cpu, client_cpu)
        finally:
            lab.close()


def report(
    curl: Measure,
    applied: Measure,
    start_wall: float,
    plan_wall: float,
    plan_cpu: float,
    client_cpu: float,
) -> None:
    header = f"{'':>12} {'wall s':>8} {'obfleet CPU s':>14} {'hosts CPU s':>12}"
    print(f"{header} {'machine busy CPU s':>19}")
    print(row("curl (POST + poll)", curl))
    print(row("obfleet apply", applied))
    print(f"apply / curl, to SUCCESSFUL:        {applied.wall / curl.wall:6.2f}")
    print(f"obfleet diff (plan), wall:          {plan_wall:6.2f} s  (CPU {plan_cpu:.2f} s)")
    print(f"  of which the command's start-up:  {start_wall:6.2f} s  (`obfleet apply --schema`)")
    print(f"obfleet apply's own CPU (client):   {client_cpu:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16, help="hosts of each cluster")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per deployment")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
