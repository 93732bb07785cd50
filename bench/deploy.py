"""OBProxy deployment benchmark, run by hand as root: `python -m bench.deploy`.

A real `obfleet serve` (SQLite in a temp dir) deploys an OBProxy cluster (the stand-in RPM, RS_LIST
mode) to 1, 4 and 16 test hosts (network namespaces with their own sshd, tests/support), one
cluster per size on hosts of its own. For each size it prints the wall time from the POST to the
task's SUCCESSFUL, and the ratio T(16)/T(1) (the aim: at most 2, since the hosts' branches run in
parallel). It also starts the stand-in by hand on a host, with the very command line obfleet
used, to measure the stand-in's own start-up, and prints what obfleet adds per host beyond it,
with the median time of each step across the branches.

Each round deploys a package of its own (version 4.2.3.<round>) on ports of its own, so the same
hosts serve every round; a round starts with an unmeasured deployment of its package to a spare
host, which pays the package's one-time extraction. The figures are the medians over the rounds.

The test hosts are namespaces of this one machine: they share its CPUs with obfleet and with
whatever else runs here. So it also prints the CPU time obfleet's server and the hosts' processes
(sshd, shells, the stand-ins) used, and the floor that puts under T(N): their sum divided by the
CPUs. Where that floor is near or above 2 x T(1), the ratio measures this machine.

Bounded: 1 + 3 deployments per round, --rounds rounds, each deployment given --timeout seconds;
every namespace, process and file is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOST_CHAIN,
    SQL_PORT,
    Fleet,
    fleet_server,
    obproxy_argv,
    running_fleet,
)
from tests.deploy.test_deploy import OB_LINK
from tests.standin.rpm import build_standin_rpm
from tests.support.testhosts import HostLab, NetnsHost

STARTS = 5  # by-hand starts of the stand-in, for its median start-up
POLL_S = 0.05  # how often the task is looked at: a finer poll costs the server CPU it measures


# --- CPU accounting -----------------------------------------------------------------------------


def process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """CPU seconds of a process (all its threads), with those of its children it has reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # it just exited
    used = fields[11:15] if reaped_children else fields[11:13]
    return sum(int(x) for x in used) / os.sysconf("SC_CLK_TCK")


def hosts_cpu(hosts: list[NetnsHost]) -> float:
    """CPU seconds used so far by the hosts' processes: every live process of each host with the
    children it reaped (sshd holds its sessions', a session its commands')."""
    total = 0.0
    for host in hosts:
        pids = subprocess.run(
            ["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=False
        ).stdout.split()
        total += sum(process_cpu(int(pid), reaped_children=True) for pid in pids)
    return total


def machine_busy_cpu() -> float:
    """CPU seconds every CPU of the machine spent busy so far, whatever ran."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def own_children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


@dataclass
class Measure:
    wall: float = 0.0
    server_cpu: float = 0.0
    hosts_cpu: float = 0.0
    machine_cpu: float = 0.0
    task: Any = field(default=None, repr=False)


@contextlib.contextmanager
def measuring(server_pid: int, hosts: list[NetnsHost]) -> Iterator[Measure]:
    m = Measure()
    server, on_hosts, machine = process_cpu(server_pid), hosts_cpu(hosts), machine_busy_cpu()
    yield m
    m.server_cpu = process_cpu(server_pid) - server
    m.hosts_cpu = hosts_cpu(hosts) - on_hosts
    m.machine_cpu = machine_busy_cpu() - machine


# --- deploying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    index: int
    package: str  # the RPM file name
    version: str

    @property
    def ports(self) -> tuple[int, int]:
        return SQL_PORT + 10 * self.index, EXPORTER_PORT + 10 * self.index

    @property
    def home(self) -> str:
        return f"/home/admin/obproxy-{self.version}"


def deploy(
    fleet: Fleet, name: str, hosts: list[NetnsHost], r: Round, timeout: float
) -> tuple[float, Any]:
    """Create a cluster on `hosts`; the seconds from the POST to SUCCESSFUL, and the task."""
    sql_port, exporter_port = r.ports
    body = {
        "name": name,
        "workMode": "RS_LIST",
        "obLinks": [OB_LINK],
        "obproxyInstallParam": {
            "hostIds": [fleet.host_id(h) for h in hosts],
            "sqlPort": sql_port,
            "exportPort": exporter_port,
            "version": r.package,
        },
    }
    started = time.perf_counter()
    task_id = fleet.post("/api/v2/obproxy/clusters", body)["id"]
    deadline = time.monotonic() + timeout
    while True:
        task = fleet.get(f"/api/v2/tasks/instances/{task_id}")
        if task["status"] == "SUCCESSFUL":
            return time.perf_counter() - started, task
        if task["status"] == "FAILED" or time.monotonic() > deadline:
            fleet.succeeded(task_id)  # fails with the logs of what failed
            raise RuntimeError(f"task {task_id} is still {task['status']} after {timeout:g} s")
        time.sleep(POLL_S)


@dataclass
class StandinStart:
    wall: float  # median seconds until the start command returned (it then listens)
    cpu: float  # median CPU seconds of one start
    noop: float  # median seconds to run `true` the same way (part of `wall`)


def standin_startup(host: NetnsHost, home: str) -> StandinStart:
    """The stand-in's own start-up: started by hand on the host (not over SSH) with the very
    command line obfleet used, STARTS times, the running one killed before each."""
    argv = obproxy_argv(host, home)
    start = f"cd {home} && LD_LIBRARY_PATH={home}/lib {shlex.join(argv)}"
    walls, cpus, noops = [], [], []
    for _ in range(STARTS):
        pid = int(host.read_file(f"{home}/run/obproxy.pid"))
        host.run(f"kill -9 {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.01; done")
        began = time.perf_counter()
        host.run("true", check=True)
        noops.append(time.perf_counter() - began)
        # The start command's processes are reaped by nsenter here (counted as this process's
        # children); the daemon it leaves runs on the host (counted by hosts_cpu).
        before = hosts_cpu([host]) + own_children_cpu()
        began = time.perf_counter()
        host.run(start, check=True)
        walls.append(time.perf_counter() - began)
        time.sleep(0.2)  # the daemon settles: what it used is its start-up
        cpus.append(hosts_cpu([host]) + own_children_cpu() - before)
    return StandinStart(statistics.median(walls), statistics.median(cpus), statistics.median(noops))


# --- the report ---------------------------------------------------------------------------------


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def step_medians(task: dict[str, Any]) -> dict[str, float]:
    """Median duration of each host step across the branches, and of the whole branch."""
    by_step: dict[str, list[float]] = {}
    branches: dict[int, list[float]] = {}
    for s in task["subtasks"]:
        if s["parallelIdx"] < 0 or not s["startTime"] or not s["finishTime"]:
            continue
        start, finish = _ts(s["startTime"]), _ts(s["finishTime"])
        by_step.setdefault(s["name"], []).append(finish - start)
        branches.setdefault(s["parallelIdx"], []).extend([start, finish])
    medians = {name: statistics.median(by_step[name]) for name in HOST_CHAIN if name in by_step}
    medians["(one host's branch, first start to last finish)"] = statistics.median(
        max(times) - min(times) for times in branches.values()
    )
    return medians


def row(label: str, m: Measure) -> str:
    return (
        f"{label:>12} {m.wall:8.2f} {m.server_cpu:14.2f} {m.hosts_cpu:12.2f} {m.machine_cpu:19.2f}"
    )


def median_measure(measures: list[Measure]) -> Measure:
    """The measure of median wall time (its CPU figures belong to the same run)."""
    return sorted(measures, key=lambda m: m.wall)[len(measures) // 2]


def report(sizes: list[int], runs: dict[int, list[Measure]], standin: StandinStart) -> None:
    one, most = sizes[0], sizes[-1]
    median = {n: median_measure(runs[n]) for n in sizes}
    t1, tn = median[one].wall, median[most].wall
    cpus = os.cpu_count() or 1
    floor = (median[most].server_cpu + median[most].hosts_cpu) / cpus
    print(f"\nmedians over {len(runs[one])} round(s):")
    for n in sizes:
        print(row(f"{n} host(s)", median[n]))
    print(f"T({most})/T({one}) = {tn / t1:.2f}  (aim: <= 2)")
    print(
        f"CPU floor of T({most}) here: (obfleet + hosts CPU) / {cpus} CPUs = {floor:.2f} s, "
        f"so T({most})/T({one}) >= {floor / t1:.2f} on this machine even if nothing else ran"
    )
    print(
        f"stand-in start-up by hand (median of {STARTS}): {standin.wall:.3f} s wall "
        f"(of which {standin.noop:.3f} s entering the host), {standin.cpu:.3f} s CPU"
    )
    print(f"obfleet's time per host beyond the stand-in's start-up: T({one}) - start-up =")
    print(f"  {t1 - standin.wall:.2f} s")
    for n in sizes[1:]:
        extra = (median[n].wall - t1) / (n - one)
        print(f"  each host beyond the first, at {n} hosts: {extra:+.3f} s")
    for n in sizes:
        m = median[n]
        print(
            f"CPU per host at {n}: obfleet {m.server_cpu / n:.3f} s, hosts "
            f"{m.hosts_cpu / n:.3f} s (of which the stand-in's own start ~{standin.cpu:.3f} s)"
        )
    for n in (one, most):
        print(f"median step times across the branches, {n} host(s):")
        for name, seconds in step_medians(median[n].task).items():
            print(f"  {name:48} {seconds:7.3f} s")


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    sizes = sorted(int(n) for n in args.sizes.split(","))
    env = {"OBFLEET_ENGINE_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-deploy-") as tmp:
        rpms = [
            build_standin_rpm(Path(tmp) / "rpm", version=f"4.2.3.{i}")
            for i in range(1, args.rounds + 1)
        ]
        default_rpm = build_standin_rpm(Path(tmp) / "rpm")
        lab = HostLab(1 + sum(sizes))
        try:
            lab.start()
            spare, *pool = lab.hosts
            print(f"{len(lab.hosts)} test hosts up; deploying to {sizes} of them")
            server = fleet_server(lab, Path(tmp) / "data", env=env)
            with running_fleet(server, lab, default_rpm) as fleet:
                assert server.proc is not None
                for rpm in rpms:
                    r = fleet.api.post(
                        "/api/v2/software-packages", files={"file": (rpm.name, rpm.read_bytes())}
                    )
                    r.raise_for_status()
                print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
                header = f"{'':>12} {'wall s':>8} {'obfleet CPU s':>14} {'hosts CPU s':>12}"
                print(f"{header} {'machine busy CPU s':>19}")
                runs: dict[int, list[Measure]] = {n: [] for n in sizes}
                for i, rpm in enumerate(rpms, start=1):
                    rnd = Round(i, rpm.name, f"4.2.3.{i}")
                    with measuring(server.proc.pid, [spare]) as m:
                        m.wall, m.task = deploy(fleet, f"warm_{i}", [spare], rnd, args.timeout)
                    print(row(f"r{i} warm-up", m))
                    free = list(pool)
                    for n in sizes:
                        hosts, free = free[:n], free[n:]
                        with measuring(server.proc.pid, hosts) as m:
                            m.wall, m.task = deploy(fleet, f"b{i}_{n}", hosts, rnd, args.timeout)
                        runs[n].append(m)
                        print(row(f"r{i} {n} host(s)", m))
                standin = standin_startup(spare, rnd.home)
            report(sizes, runs, standin)
        finally:
            lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16", help="hosts per deployment")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (1-9)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per deployment")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="OBFLEET_ENGINE_CONCURRENCY (default: its own)"
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds must be 1-9")
    run(args)


if __name__ == "__main__":
    main()
