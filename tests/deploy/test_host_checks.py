"""How the install finds who holds a port: the kernel's socket table, then the process owning
the socket. Run here against real listeners of this machine."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obfleet.flows.obproxy.acts import check_removable
from obfleet.flows.runtime import StepError
from obfleet.hosts.processes import _owners_script, parse_listeners

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0B43 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1
   1: 0100007F:0B43 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1
   2: 0100007F:0B44 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1
   0: 00000000000000000000000000000000:0B43 00000000000000000000000000000000:0000 0A 0 0 0 0 0 4545
"""


def test_only_listening_sockets_on_the_ports_asked_for() -> None:
    # 0B43 = 2883; the ESTABLISHED row (01) and other ports do not count; tcp6 rows do.
    assert parse_listeners(TABLE, {2883}) == {2883: {4242, 4545}}
    assert parse_listeners(TABLE, {2883, 2884}) == {2883: {4242, 4545}, 2884: {4444}}
    assert parse_listeners(TABLE, {2885}) == {}


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A listener whose command line has a newline and a backslash, as `python -c` ones do."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import socket, sys\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "print('ready\\n', flush=True)\n"
        "s.accept()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    yield proc, port
    proc.kill()
    proc.wait()


def test_the_owner_of_a_listening_socket_is_found_on_one_line(
    listener: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = listener
    table = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    (inode,) = parse_listeners(table, {port})[port]
    out = subprocess.run(
        ["/bin/sh", "-c", _owners_script([inode])], capture_output=True, text=True, check=True
    ).stdout
    (line,) = out.splitlines()
    link, pid, args = line.split(" ", 2)
    assert (link, int(pid)) == (f"socket:[{inode}]", proc.pid)
    assert args.startswith(f"{sys.executable} -c import socket, sys ")


NOT_INSTALL_PATHS = ["/", "/home", "/home/admin", "/root", "/opt", "/usr/bin", "/usr/lib/x"]


@pytest.mark.parametrize("home", [*NOT_INSTALL_PATHS, "/etc/obproxy", "/data"])
def test_what_is_not_an_install_path_is_never_removed(home: str) -> None:
    with pytest.raises(StepError, match="refusing to remove"):
        check_removable(home)


@pytest.mark.parametrize(
    "home", ["/home/admin/obproxy-4.2.3.0", "/usr/local/obproxy/4.3", "/data/obproxy-4.3.0.0"]
)
def test_install_paths_may_be_removed(home: str) -> None:
    assert check_removable(home) == home
