"""The test hosts themselves: isolated, reachable, breakable on purpose, and cleaned up.

These use the system OpenSSH client, not obfleet's SSH layer, so a bug in one cannot hide a bug
in the other.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import testhosts
from tests.support.testhosts import LAB_NETWORK, HostLab, LabError, NetnsHost

pytestmark = pytest.mark.hosts


def ssh(
    lab: HostLab, host: NetnsHost, command: str, timeout: int = 5
) -> subprocess.CompletedProcess[str]:
    """Run a command on host with the stock OpenSSH client and the lab's root key."""
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(lab.root_key_path),
        "-p",
        str(host.ssh_port),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        f"ConnectTimeout={timeout}",
        "-o",
        "LogLevel=ERROR",
        f"root@{host.ip}",
        command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 20, check=False)


def tcp_banner(ip: str, port: int, timeout: float = 3) -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.settimeout(timeout)
        return s.recv(64)


@pytest.fixture
def gateway_listener(host_lab: HostLab) -> Iterator[tuple[int, list[str]]]:
    """A TCP server on the gateway address (as the obfleet server will be) recording peers."""
    server = socket.create_server((host_lab.gateway_ip, 0))
    server.settimeout(0.2)
    peers: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except TimeoutError:
                continue
            peers.append(addr[0])
            conn.sendall(b"hello from obfleet\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], peers
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_addresses_come_from_the_benchmark_range_only(host_lab: HostLab) -> None:
    assert len(host_lab.hosts) == 3
    assert len(host_lab.addresses) == 4
    for address in host_lab.addresses:
        assert ipaddress.IPv4Address(address) in LAB_NETWORK
        assert ipaddress.IPv4Address(address) in host_lab.subnet
    assert host_lab.gateway_ip.endswith(".1")
    names = [h.name for h in host_lab.hosts]
    assert len(set(names)) == 3
    assert all(n.startswith("obft") for n in names)


def test_files_are_private_to_each_host(test_hosts: list[NetnsHost]) -> None:
    h1, h2, _ = test_hosts
    for path in ("/home/admin/only-on-h1", "/tmp/only-on-h1", "/root/only-on-h1"):
        h1.write_file(path, "h1")
        try:
            assert h1.read_file(path) == "h1"
            assert not h2.file_exists(path)
            assert not Path(path).exists(), "leaked into the real root filesystem"
        finally:
            h1.run(["rm", "-f", path])
    assert h1.file_exists("/home/admin") and h2.file_exists("/home/admin")


def test_processes_and_hostname_are_private(test_hosts: list[NetnsHost]) -> None:
    h1, h2, _ = test_hosts
    h1.run("setsid sleep 300 > /dev/null 2>&1 < /dev/null &", check=True)
    try:
        assert h1.pgrep(r"^sleep 300$")
        assert not h2.pgrep(r"^sleep 300$")
        assert h2.run("pgrep -fx 'sleep 300'").returncode == 1
        assert h1.run("pgrep -fx 'sleep 300'").returncode == 0
        assert h1.run("hostname").stdout.strip() == h1.name
        assert 1 in h1.pids()
    finally:
        h1.run("pkill -x sleep")


def test_reachable_over_ssh_and_ssh_sees_the_host_namespaces(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    for host in test_hosts:
        host.write_file("/home/admin/marker", host.name + "\n")
        result = ssh(host_lab, host, "hostname; cat /home/admin/marker; id -u; ip -4 -o addr")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == host.name
        assert lines[1] == host.name
        assert lines[2] == "0"
        assert host.ip in result.stdout
        assert "192.0.2." not in result.stdout  # the machine's real interface is not there
        host.run("rm -f /home/admin/marker")


def test_python3_runs_on_hosts_over_ssh(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    result = ssh(
        host_lab, test_hosts[0], "/usr/bin/python3 -c 'import sys; print(sys.version_info[0])'"
    )
    assert result.stdout.strip() == "3", result.stderr


def test_hosts_reach_the_gateway(
    host_lab: HostLab, test_hosts: list[NetnsHost], gateway_listener: tuple[int, list[str]]
) -> None:
    port, peers = gateway_listener
    code = (
        "import socket;"
        f"s = socket.create_connection(({host_lab.gateway_ip!r}, {port}), timeout=3);"
        "print(s.recv(64).decode().strip())"
    )
    for host in test_hosts:
        result = host.run(["/usr/bin/python3", "-c", code])
        assert result.stdout.strip() == "hello from obfleet", result.stderr
    assert sorted(peers) == sorted(h.ip for h in test_hosts)


def test_hosts_have_no_route_out(test_hosts: list[NetnsHost]) -> None:
    routes = test_hosts[0].run("ip -4 route").stdout
    assert "default" not in routes


def test_cut_link_makes_ssh_fail_and_restore_brings_it_back(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[1]
    host.cut_link()
    try:
        assert not host.link_up
        started = time.monotonic()
        result = ssh(host_lab, host, "true", timeout=2)
        assert result.returncode == 255
        assert time.monotonic() - started < 15
        assert ssh(host_lab, test_hosts[0], "true").returncode == 0  # others unaffected
    finally:
        host.restore_link()
    assert host.link_up
    assert ssh(host_lab, host, "true").returncode == 0


def test_occupied_port_is_visible_only_on_that_host(test_hosts: list[NetnsHost]) -> None:
    h1, h2, _ = test_hosts
    with h1.occupy_port(2883) as occupier:
        assert occupier.active
        assert ":2883 " in h1.run("ss -Hltn").stdout
        assert ":2883 " not in h2.run("ss -Hltn").stdout
        with socket.create_connection((h1.ip, 2883), timeout=3):
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((h2.ip, 2883), timeout=3)
        bind = h1.run(["/usr/bin/python3", "-c", "import socket; socket.create_server(('', 2883))"])
        assert "Address already in use" in bind.stderr
    assert ":2883 " not in h1.run("ss -Hltn").stdout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((h1.ip, 2883), timeout=3)


def test_kill_and_start_sshd(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[2]
    host.kill_sshd()
    assert not host.sshd_running()
    with pytest.raises(ConnectionRefusedError):
        tcp_banner(host.ip, 22)
    assert ssh(host_lab, host, "true", timeout=2).returncode == 255
    host.start_sshd()
    assert tcp_banner(host.ip, 22).startswith(b"SSH-2.0-")
    assert ssh(host_lab, host, "true").returncode == 0


def test_regenerated_host_key_is_served(test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[0]

    def served_key() -> str:
        out = subprocess.run(
            ["ssh-keyscan", "-T", "3", "-t", "ed25519", host.ip],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return " ".join(out.split()[1:3])

    old = host.host_key
    assert old.startswith("ssh-ed25519 ")
    assert served_key() == old
    new = host.regenerate_host_key()
    assert new != old
    assert served_key() == new


def test_heal_undoes_faults(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[0]
    original = host.host_key
    host.regenerate_host_key()
    host.cut_link()
    host.occupy_port(2884)
    host.kill_sshd()
    host_lab.heal()
    assert host.link_up
    assert host.sshd_running()
    assert host.host_key == original
    assert ":2884 " not in host.run("ss -Hltn").stdout
    assert ssh(host_lab, host, "true").returncode == 0


def test_full_disk(test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[0]
    host.fill_disk()
    try:
        result = host.run("dd if=/dev/zero of=/home/admin/f bs=4k count=1")
        assert result.returncode != 0
        assert "No space left" in result.stderr
    finally:
        host.free_disk()
    assert host.run("echo x > /home/admin/f && rm /home/admin/f").returncode == 0


def test_daemonized_processes_are_reaped(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    """Orphans end up under the host's pid 1, which reaps them: a killed daemon is gone,
    not a zombie that `kill -0` still finds."""
    host = test_hosts[0]
    result = ssh(host_lab, host, "setsid sleep 301 > /dev/null 2>&1 < /dev/null & echo $!")
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.strip())
    assert host.run(f"kill -0 {pid}").returncode == 0
    host.run(f"kill -9 {pid}")
    deadline = time.monotonic() + 5
    while host.run(f"kill -0 {pid}").returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.run(f"kill -0 {pid}").returncode != 0


def test_reset_wipes_files_and_processes(test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[2]
    host.write_file("/home/admin/junk", "x")
    host.run("setsid sleep 302 > /dev/null 2>&1 < /dev/null &", check=True)
    host.reset()
    assert not host.file_exists("/home/admin/junk")
    assert not host.pgrep("sleep 302")
    assert host.sshd_running()
    assert host.file_exists("/home/admin")


def _system_inventory() -> tuple[set[str], set[str]]:
    """Namespaces and links made by this test process (other runs may be going on)."""
    ours = re.compile(rf"^obft[hbp]{os.getpid():x}[g-z]")
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    links = set(os.listdir("/sys/class/net"))
    return {n for n in netns if ours.match(n)}, {n for n in links if ours.match(n)}


def test_teardown_leaves_nothing_behind(host_lab_factory: Callable[..., HostLab]) -> None:
    netns_before, links_before = _system_inventory()
    lab = host_lab_factory(2)
    made = {h.netns for h in lab.hosts}
    assert made <= set(os.listdir("/run/netns"))
    lab.hosts[0].occupy_port(2883)
    lab.hosts[1].cut_link()
    lab.hosts[0].run("setsid sleep 303 > /dev/null 2>&1 < /dev/null &", check=True)
    state_dir, user, bridge = lab.state_dir, lab.user, lab.bridge
    roots = [r for h in lab.hosts for r in testhosts._netns_pids(h.netns)]
    lab.close()
    assert lab.leftovers() == []
    assert _system_inventory() == (netns_before, links_before)
    assert not state_dir.exists()
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
    assert not [p for p in roots if testhosts._pid_alive(p)]
    lab.close()  # idempotent


def test_failed_start_cleans_up(
    host_lab_factory: Callable[..., HostLab], monkeypatch: pytest.MonkeyPatch
) -> None:
    netns_before, links_before = _system_inventory()
    calls = []

    def broken_start_sshd(self: NetnsHost) -> None:
        calls.append(self.name)
        if len(calls) == 2:
            raise LabError("simulated failure while starting the second host")
        original(self)

    original = NetnsHost.start_sshd
    monkeypatch.setattr(NetnsHost, "start_sshd", broken_start_sshd)
    lab = HostLab(3)
    with pytest.raises(LabError, match="simulated"):
        lab.start()
    assert lab.leftovers() == []
    assert _system_inventory() == (netns_before, links_before)


def test_leftovers_of_a_killed_run_are_removed(host_lab_factory: Callable[..., HostLab]) -> None:
    """A run killed with SIGKILL cannot tear down; the next lab start removes its leftovers."""
    root = Path(__file__).resolve().parent.parent
    code = (
        "from tests.support.testhosts import HostLab\n"
        "lab = HostLab(1).start()\n"
        "print(lab.token, lab.user, lab.state_dir, flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        token, user, state_dir = proc.stdout.readline().split()
    finally:
        proc.kill()
        proc.wait()
    assert os.path.exists(f"/run/netns/obfth{token}1")
    testhosts.cleanup_stale()  # (a concurrent run's lab start may have done it already)
    assert not os.path.exists(f"/run/netns/obfth{token}1")
    assert not os.path.exists(f"/sys/class/net/obftb{token}")
    assert not os.path.exists(f"/sys/class/net/obftp{token}1")
    assert not os.path.exists(state_dir)
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
