"""Real test hosts for obfleet: Linux namespaces, each with its own address, sshd and files.

Why: obfleet's host layer speaks SSH to machines it deploys OBProxy on. Mocking SSH would hide the
things that break in production (auth, host keys, timeouts, cut links, busy ports), so every test
host here is a real, isolated little machine:

* its own network namespace with one address from 198.18.0.0/15 (the benchmarking range; no other
  range is ever used), attached through a veth pair to ONE bridge in the root namespace; the
  bridge carries the gateway address, where the obfleet server under test listens, so hosts can
  call back (config server) and the root namespace reaches every host;
* its own mount namespace with private tmpfs on /home (with /home/admin), /root and /tmp, and
  an overlay on /etc (the machine's, with the host's own changes on top: a user created on a
  host exists there only), so two hosts never see each other's files, and nothing leaks into
  the real /etc, /root or /tmp;
* its own pid and UTS namespace: `ps`/`pgrep` on a host only see that host's processes, and the
  hostname is the host's name. pid 1 is a tiny init that reaps orphans (daemonized programs), so a
  killed daemon does not linger as a zombie that `kill -0` would still find;
* its own sshd on port 22 with its own host key; root logs in with the lab's ed25519 key, and a
  per-lab system user logs in with a password (for password-auth tests).

Faults are real: `cut_link()` downs the host's interface, `kill_sshd()` kills sshd, `fill_disk()`
fills /home, `occupy_port()` binds a port, `regenerate_host_key()` changes the host key.

Everything is named `obft` + kind (h host netns, b bridge, p veth, u user) + the creating process
id in hex + a lab letter (g..z) [+ host index], e.g. netns `obfth1a2bg1`, so a later run can
recognise and remove leftovers of a crashed run (whose pid is gone) and two concurrent runs never
collide. `HostLab.close()` removes every namespace, interface, process, user and file it made,
also after a partial start.

Needs root, iproute2, util-linux (unshare, nsenter, mount), openssh-server and /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar

__all__ = [
    "LAB_NETWORK",
    "HostLab",
    "LabError",
    "NetnsHost",
    "PortOccupier",
    "cleanup_stale",
    "host_lab",
    "lab_unavailable_reason",
]

#: The only range test hosts ever get addresses from (RFC 2544 benchmarking range).
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
SSHD = "/usr/sbin/sshd"
PREFIX = "obft"
GATEWAY_OCTET = 1
FIRST_HOST_OCTET = 11
MAX_HOSTS = 50
HOST_IFNAME = "eth0"
STATE_PARENT = Path("/var/tmp")  # not /tmp: hosts mount a private tmpfs over /tmp
HOST_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAB_LETTERS = "ghijklmnopqrstuvwxyz"  # not hex digits: they end the pid part of a name
STALE_NAME = re.compile(rf"^{PREFIX}[hbpu](?P<pid>[0-9a-f]+)[g-z]")
STALE_DIR = re.compile(rf"^{PREFIX}-(?P<pid>[0-9a-f]+)[g-z]-")


class LabError(RuntimeError):
    """Building, driving or tearing down the test hosts failed."""


def lab_unavailable_reason() -> str | None:
    """Say why test hosts cannot be built here, or None if they can.

    Only the two conditions that legitimately differ between machines are reasons to skip: not
    being root and not having sshd. Missing iproute2 or util-linux is an error, not a skip.
    """
    if os.geteuid() != 0:
        return "test hosts need root (network, mount and pid namespaces)"
    if not os.access(SSHD, os.X_OK):
        return f"test hosts need openssh-server ({SSHD} is missing)"
    return None


# --------------------------------------------------------------------------------------------
# small process helpers


def _sh(
    argv: Sequence[str], *, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a root-namespace helper command; raise LabError with its stderr when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """Direct children of pid (root pid namespace view)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def _wait_for_child(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """The single child that a forking wrapper (unshare --fork, nsenter -p) started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if kids:
            return kids[0]
        if proc.poll() is not None:
            raise LabError(f"{proc.args!r} exited with {proc.returncode} before its child started")
        time.sleep(0.01)
    raise LabError(f"{proc.args!r} started no child within {timeout}s")


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """First stdout line of proc, or LabError if it exits or stays silent too long."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LabError(f"{proc.args!r} did not report ready within {timeout}s")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(timeout=5)
                raise LabError(f"{proc.args!r} exited ({proc.returncode}) before reporting ready")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")


def _kill_and_wait(pids: Sequence[int], timeout: float = 10) -> list[int]:
    """SIGKILL pids and wait until they are gone; return those still alive after timeout."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _pid_alive(p)]
    return alive


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill and wait for a Popen we started, so the test runner keeps no zombies."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


def _netns_pids(netns: str) -> list[int]:
    """Root-namespace pids of every process in a network namespace."""
    proc = _sh(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


# pid 1 of every host. Kept tiny and stdlib-only; runs in the host's fresh mount/pid/uts namespaces.
HOST_INIT = '''\
"""pid 1 of an obfleet test host: private /etc layer, /home, /root and /tmp, hostname, then reap
orphans."""
import os, signal, socket, subprocess, sys

def main():
    hostname, home_size, tmp_size, uid, gid, etc_layer = sys.argv[1:7]
    # /etc is the machine's, seen through an overlay: users a deploy creates on the host
    # (useradd) stay in this host's upper layer, never in the machine's /etc/passwd.
    upper, work = etc_layer + "/upper", etc_layer + "/work"
    os.makedirs(upper)
    os.makedirs(work)
    layers = "lowerdir=/etc,upperdir=%s,workdir=%s" % (upper, work)
    subprocess.run(["mount", "-t", "overlay", "-o", layers, "obftetc", "/etc"], check=True)
    for target, opts in (
        ("/home", "size=%s,mode=0755" % home_size),
        ("/root", "size=64m,mode=0700"),
        ("/tmp", "size=%s,mode=1777" % tmp_size),
    ):
        argv = ["mount", "-t", "tmpfs", "-o", opts, "obft" + target[1:], target]
        subprocess.run(argv, check=True)
    os.mkdir("/home/admin", 0o755)
    os.chown("/home/admin", int(uid), int(gid))
    socket.sethostname(hostname)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        signal.sigtimedwait({signal.SIGCHLD}, 5)

main()
'''

PORT_LISTENER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
sys.stdout.write("ready\\n")
sys.stdout.flush()
while True:
    c, _ = s.accept()
    c.close()
"""


# --------------------------------------------------------------------------------------------


class PortOccupier:
    """A listener holding a TCP port on a test host (0.0.0.0:port) until released.

    Use as a context manager or call `release()`; the lab releases leftovers at heal/teardown.
    """

    def __init__(self, host: NetnsHost, port: int) -> None:
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    def start(self) -> PortOccupier:
        self._proc = self.host.spawn(["/usr/bin/python3", "-c", PORT_LISTENER, str(self.port)])
        try:
            self._pid = _wait_for_child(self._proc)
            _read_line(self._proc, timeout=10)
        except BaseException:
            self.release()
            raise
        return self

    @property
    def active(self) -> bool:
        return self._pid is not None and _pid_alive(self._pid)

    def release(self) -> None:
        """Free the port (idempotent)."""
        if self._pid is not None:
            _kill_and_wait([self._pid])
            self._pid = None
        _reap(self._proc)
        self._proc = None
        if self in self.host._occupiers:
            self.host._occupiers.remove(self)

    def __enter__(self) -> PortOccupier:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class NetnsHost:
    """One test host. Commands from `run()` and everything started over SSH see the same
    network, mount, pid and UTS namespaces, i.e. the same files, processes and ports."""

    def __init__(self, lab: HostLab, index: int, ip: str) -> None:
        self.lab = lab
        self.index = index
        self.name = f"{PREFIX}h{lab.token}{index}"
        self.netns = self.name
        self.ip = ip
        self.ssh_port = 22
        self.ifname = HOST_IFNAME
        self.peer_ifname = f"{PREFIX}p{lab.token}{index}"
        self.dir = lab.state_dir / f"h{index}"
        self.sshd_config = self.dir / "sshd_config"
        self.sshd_log_path = self.dir / "sshd.log"
        self.host_key_path = self.dir / "ssh_host_ed25519_key"
        self._init_proc: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None  # root-namespace pid of the host's pid 1
        self._sshd_proc: subprocess.Popen[bytes] | None = None
        self._sshd_pid: int | None = None
        self._occupiers: list[PortOccupier] = []
        self._original_host_key = ""

    def __repr__(self) -> str:
        return f"<NetnsHost {self.name} {self.ip}>"

    # ---- building ---------------------------------------------------------------------------

    def _create(self) -> None:
        self.dir.mkdir(mode=0o700)
        _sh(["ip", "netns", "add", self.netns])
        _sh(
            [
                "ip",
                "link",
                "add",
                self.peer_ifname,
                "type",
                "veth",
                "peer",
                "name",
                self.ifname,
                "netns",
                self.netns,
            ]
        )
        _sh(["ip", "link", "set", self.peer_ifname, "master", self.lab.bridge, "up"])
        plen = self.lab.subnet.prefixlen
        _sh(["ip", "-n", self.netns, "addr", "add", f"{self.ip}/{plen}", "dev", self.ifname])
        _sh(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        _sh(["ip", "-n", self.netns, "link", "set", self.ifname, "up"])
        self._start_init()
        self._write_sshd_config()
        self._keygen()
        self._original_host_key = self.host_key
        self.start_sshd()

    def _start_init(self) -> None:
        user = pwd.getpwnam(self.lab.user)
        argv = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation"]
        argv += ["private", "--pid", "--fork", "--mount-proc", "--uts", "--"]
        argv += ["/usr/bin/python3", str(self.lab.init_script), self.name]
        argv += [self.lab.home_size, self.lab.tmp_size, str(user.pw_uid), str(user.pw_gid)]
        argv += [str(self.dir / "etc-layer")]
        with open(self.dir / "init.log", "ab") as log:
            self._init_proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self.init_pid = _wait_for_child(self._init_proc)
        line = _read_line(self._init_proc, timeout=15)
        if line != "ready":
            raise LabError(f"{self.name}: init said {line!r}; see {self.dir / 'init.log'}")

    def _write_sshd_config(self) -> None:
        lab = self.lab
        self.sshd_config.write_text(
            f"""\
# sshd of obfleet test host {self.name}
ListenAddress {self.ip}:{self.ssh_port}
HostKey {self.host_key_path}
PidFile {self.dir / "sshd.pid"}
AuthorizedKeysFile {lab.state_dir / "authorized_keys"}/%u
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AllowUsers root {lab.user}
LogLevel VERBOSE
MaxStartups 200:30:400
MaxSessions 200
LoginGraceTime 30
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
Subsystem sftp internal-sftp
"""
        )

    def _keygen(self) -> None:
        for suffix in ("", ".pub"):
            Path(f"{self.host_key_path}{suffix}").unlink(missing_ok=True)
        _sh(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                self.name,
                "-f",
                str(self.host_key_path),
            ]
        )

    # ---- running things on the host ---------------------------------------------------------

    def _enter(self) -> list[str]:
        if self.init_pid is None or not _pid_alive(self.init_pid):
            raise LabError(f"{self.name} is not running")
        return [
            "nsenter",
            f"--target={self.init_pid}",
            "--net",
            "--mount",
            "--pid",
            "--uts",
            "--wd=/",
            "--",
            "env",
            "-i",
            f"PATH={HOST_PATH_ENV}",
            "HOME=/root",
            "LANG=C.UTF-8",
        ]

    def spawn(self, argv: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
        """Start a long-running program on the host. nsenter forks: the program is the only
        child of the returned Popen (kill that child, not the Popen, to stop it)."""
        defaults: dict[str, object] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.DEVNULL,
            "start_new_session": True,
        }
        defaults.update(popen)
        return subprocess.Popen([*self._enter(), *argv], **defaults)  # type: ignore[call-overload]

    def run_bytes(
        self, cmd: str | Sequence[str], *, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        """Like `run` but with bytes in and out."""
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return subprocess.run(
            [*self._enter(), *argv],
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def run(
        self,
        cmd: str | Sequence[str],
        *,
        check: bool = False,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on the host (a string goes through /bin/sh -c) as root, bypassing SSH.

        Tests use this to look at or prepare a host independently of the code under test.
        """
        raw = self.run_bytes(cmd, input=None if input is None else input.encode(), timeout=timeout)
        result = subprocess.CompletedProcess(
            raw.args,
            raw.returncode,
            raw.stdout.decode(errors="replace"),
            raw.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise LabError(f"{self.name}: {cmd!r} exited {result.returncode}: {result.stderr}")
        return result

    def read_bytes(self, path: str) -> bytes:
        proc = self.run_bytes(["cat", "--", path])
        if proc.returncode != 0:
            raise FileNotFoundError(f"{self.name}:{path}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def read_file(self, path: str) -> str:
        return self.read_bytes(path).decode()

    def write_file(self, path: str, data: str | bytes, mode: int | None = None) -> None:
        raw = data.encode() if isinstance(data, str) else data
        script = 'cat > "$1"' + (f' && chmod {mode:o} "$1"' if mode is not None else "")
        proc = self.run_bytes(["/bin/sh", "-c", script, "sh", path], input=raw)
        if proc.returncode != 0:
            raise LabError(f"{self.name}: writing {path}: {proc.stderr.decode(errors='replace')}")

    def file_exists(self, path: str) -> bool:
        return self.run_bytes(["test", "-e", path]).returncode == 0

    def _proc_entries(self) -> list[tuple[int, int, str]]:
        """(root pid, host pid, command line) of processes in the host's pid namespace."""
        if self.init_pid is None:
            return []
        try:
            pidns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return []
        entries = []
        for pid in _netns_pids(self.netns):
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != pidns or not _pid_alive(pid):
                    continue
                with open(f"/proc/{pid}/status") as f:
                    nspid = next(line for line in f if line.startswith("NSpid:"))
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except (OSError, StopIteration):
                continue
            entries.append((pid, int(nspid.split()[-1]), cmdline))
        return sorted(entries, key=lambda e: e[1])

    def pids(self) -> list[int]:
        """Pids of the host's live processes as the host sees them (its own pid namespace)."""
        return [host_pid for _, host_pid, _ in self._proc_entries()]

    def processes(self) -> list[tuple[int, str]]:
        """(host pid, command line) of the host's live processes."""
        return [(host_pid, cmd) for _, host_pid, cmd in self._proc_entries()]

    def pgrep(self, pattern: str) -> list[int]:
        """Host pids whose full command line matches the regex pattern (like `pgrep -f`)."""
        rx = re.compile(pattern)
        return [p for p, cmd in self.processes() if rx.search(cmd)]

    def reset(self) -> None:
        """Kill every process except pid 1 and sshd, and empty /home/admin and /tmp."""
        self.heal()
        keep = {self.init_pid}
        victims = [r for r, _, _ in self._proc_entries() if r not in keep and _exe(r) != SSHD]
        _kill_and_wait(victims)
        self.run("find /home/admin /tmp -mindepth 1 -delete", check=True)

    # ---- faults -----------------------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        proc = _sh(["ip", "-n", self.netns, "-o", "link", "show", self.ifname])
        return re.search(r"[<,]UP[,>]", proc.stdout) is not None

    def cut_link(self) -> None:
        """Take the host off the network: its interface goes down (packets are dropped)."""
        _sh(["ip", "-n", self.netns, "link", "set", self.ifname, "down"])

    def restore_link(self) -> None:
        """Bring the host's interface back up; waits until the host answers again."""
        _sh(["ip", "-n", self.netns, "link", "set", self.ifname, "up"])
        if self.sshd_running():
            self._wait_for_sshd(timeout=15)

    def occupy_port(self, port: int) -> PortOccupier:
        """Bind 0.0.0.0:port on the host until the returned object is released."""
        occupier = PortOccupier(self, port).start()
        self._occupiers.append(occupier)
        return occupier

    def fill_disk(self) -> None:
        """Fill the host's /home tmpfs (where /home/admin lives) to the last byte."""
        self.run("dd if=/dev/zero of=/home/.obft-fill bs=1M 2>/dev/null; sync", timeout=120)

    def free_disk(self) -> None:
        self.run("rm -f /home/.obft-fill")

    # ---- sshd -------------------------------------------------------------------------------

    @property
    def host_key(self) -> str:
        """The host's current public key, OpenSSH format without comment ("ssh-ed25519 AAAA")."""
        text = Path(f"{self.host_key_path}.pub").read_text()
        return " ".join(text.split()[:2])

    def host_key_fingerprint(self) -> str:
        out = _sh(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{self.host_key_path}.pub"]).stdout
        return out.split()[1]

    def regenerate_host_key(self, *, restart: bool = True) -> str:
        """Give the host a new host key (as after a reinstall) and return its public key.

        sshd only reads host keys at start, so by default it is restarted.
        """
        self._keygen()
        if restart:
            self.kill_sshd(sessions=False)
            self.start_sshd()
        return self.host_key

    def sshd_running(self) -> bool:
        return self._sshd_pid is not None and _pid_alive(self._sshd_pid)

    def start_sshd(self) -> None:
        """Start the host's sshd and wait until it answers with an SSH banner."""
        if self.sshd_running():
            return
        _reap(self._sshd_proc)
        with open(self.sshd_log_path, "ab") as log:
            self._sshd_proc = self.spawn(
                [SSHD, "-D", "-f", str(self.sshd_config), "-E", str(self.sshd_log_path)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self._sshd_pid = _wait_for_child(self._sshd_proc)
        self._wait_for_sshd(timeout=15)

    def _wait_for_sshd(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.sshd_running():
                raise LabError(f"{self.name}: sshd died; log:\n{self.sshd_log()[-2000:]}")
            try:
                with socket.create_connection((self.ip, self.ssh_port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        raise LabError(f"{self.name}: sshd not answering on {self.ip}:22 ({last})")

    def kill_sshd(self, *, sessions: bool = True) -> None:
        """Kill the sshd listener; with sessions=True (default) also every open SSH session,
        so clients see their connections drop, as when a host's sshd is killed hard."""
        victims = [self._sshd_pid] if self._sshd_pid is not None else []
        if sessions:
            victims += [r for r, _, _ in self._proc_entries() if _exe(r) == SSHD]
        _kill_and_wait([p for p in victims if p is not None])
        _reap(self._sshd_proc)
        self._sshd_proc = None
        self._sshd_pid = None

    def sshd_log(self) -> str:
        try:
            return self.sshd_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- keeping tests independent ----------------------------------------------------------

    def heal(self) -> None:
        """Undo faults a previous test may have left: ports, link, disk, host key, sshd."""
        for occupier in list(self._occupiers):
            occupier.release()
        if not self.link_up:
            _sh(["ip", "-n", self.netns, "link", "set", self.ifname, "up"])
        self.free_disk()
        if self._original_host_key and self.host_key != self._original_host_key:
            self._restore_original_key()
        if not self.sshd_running():
            self.start_sshd()
        self._wait_for_sshd(timeout=15)

    def _restore_original_key(self) -> None:
        shutil.copy(self.dir / "original_host_key", self.host_key_path)
        shutil.copy(self.dir / "original_host_key.pub", f"{self.host_key_path}.pub")
        self.kill_sshd(sessions=False)

    # ---- teardown ---------------------------------------------------------------------------

    def _destroy(self) -> list[str]:
        """Kill every process in the host, delete its namespace and veth. Returns problems."""
        problems: list[str] = []
        for occupier in list(self._occupiers):
            try:
                occupier.release()
            except Exception as exc:
                problems.append(f"{self.name}: releasing port {occupier.port}: {exc}")
        # pid 1 first: the kernel then kills everything in the host's pid namespace at once.
        alive = _kill_and_wait([self.init_pid] if self.init_pid is not None else [])
        _reap(self._sshd_proc)
        _reap(self._init_proc)
        alive += _kill_and_wait(_netns_pids(self.netns))
        if alive:
            problems.append(f"{self.name}: processes survived SIGKILL: {alive}")
        self._sshd_proc = self._init_proc = None
        self._sshd_pid = self.init_pid = None
        if Path(f"/run/netns/{self.netns}").exists():
            proc = _sh(["ip", "netns", "del", self.netns], check=False)
            if proc.returncode != 0:
                problems.append(f"{self.name}: ip netns del: {proc.stderr.strip()}")
        # The veth pair dies with the namespace; delete the root side if it lingers.
        if _link_exists(self.peer_ifname):
            _sh(["ip", "link", "del", self.peer_ifname], check=False)
        return problems


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


class HostLab:
    """A set of test hosts on one bridge. Use as a context manager or call start()/close().

    Attributes tests need: `hosts`, `gateway_ip` (where to listen for call-backs from hosts),
    `root_key_path` / `root_private_key` / `root_public_key` (root's SSH key), `user` /
    `password` (password login), `addresses` (every address the lab owns).
    """

    _letters_in_use: ClassVar[set[str]] = set()

    def __init__(
        self, n_hosts: int = 3, *, home_size: str = "256m", tmp_size: str = "256m"
    ) -> None:
        if not 1 <= n_hosts <= MAX_HOSTS:
            raise ValueError(f"n_hosts must be 1..{MAX_HOSTS}")
        self.n_hosts = n_hosts
        self.home_size = home_size
        self.tmp_size = tmp_size
        self.token = ""
        self.bridge = ""
        self.subnet = LAB_NETWORK  # replaced by the chosen /24 in start()
        self.gateway_ip = ""
        self.state_dir = Path()
        self.init_script = Path()
        self.root_key_path = Path()
        self.root_private_key = ""
        self.root_public_key = ""
        self.user = ""
        self.password = ""
        self.hosts: list[NetnsHost] = []
        self._user_created = False
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<HostLab {self.token} {self.subnet} hosts={[h.ip for h in self.hosts]}>"

    @property
    def addresses(self) -> frozenset[str]:
        """Every address of the lab: the gateway and the hosts."""
        return frozenset([self.gateway_ip, *(h.ip for h in self.hosts)])

    def host(self, key: str) -> NetnsHost:
        """A host by name or address."""
        for h in self.hosts:
            if key in (h.name, h.ip):
                return h
        raise KeyError(key)

    # ---- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> HostLab:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> HostLab:
        """Build everything; on any failure tear down what was built and re-raise."""
        if self._started:
            return self
        reason = lab_unavailable_reason()
        if reason:
            raise LabError(reason)
        self._started = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        # Lock a directory that always exists, so concurrent runs pick different subnets
        # without leaving a lock file behind.
        lock = os.open(STATE_PARENT, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cleanup_stale()
            self._claim_names()
            self._claim_subnet_and_bridge()
        finally:
            os.close(lock)
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{self.token}-", dir=STATE_PARENT))
        self.state_dir.chmod(0o755)  # sshd (and the password user's sftp) must traverse it
        self.init_script = self.state_dir / "hostinit.py"
        self.init_script.write_text(HOST_INIT)
        self._make_credentials()
        for i in range(1, self.n_hosts + 1):
            host = NetnsHost(self, i, str(self.subnet.network_address + FIRST_HOST_OCTET + i - 1))
            self.hosts.append(host)
            host._create()
            shutil.copy(host.host_key_path, host.dir / "original_host_key")
            shutil.copy(f"{host.host_key_path}.pub", host.dir / "original_host_key.pub")

    def _claim_names(self) -> None:
        pid = f"{os.getpid():x}"
        for letter in LAB_LETTERS:
            if letter in HostLab._letters_in_use:
                continue
            if not _link_exists(f"{PREFIX}b{pid}{letter}"):
                HostLab._letters_in_use.add(letter)
                self.token = f"{pid}{letter}"
                self.bridge = f"{PREFIX}b{self.token}"
                return
        raise LabError("too many labs open in this process")

    def _claim_subnet_and_bridge(self) -> None:
        """Pick a /24 of 198.18.0.0/15 that no interface or route here uses, put the bridge
        with the gateway address on it. Runs under the lab lock so concurrent runs differ."""
        used = _used_subnets()
        candidates = list(LAB_NETWORK.subnets(new_prefix=24))
        start = os.getpid() % len(candidates)
        for subnet in candidates[start:] + candidates[:start]:
            if subnet not in used:
                self.subnet = subnet
                break
        else:
            raise LabError("no free /24 left in 198.18.0.0/15")
        self.gateway_ip = str(self.subnet.network_address + GATEWAY_OCTET)
        _sh(
            [
                "ip",
                "link",
                "add",
                self.bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ]
        )
        _sh(["ip", "addr", "add", f"{self.gateway_ip}/24", "dev", self.bridge])
        _sh(["ip", "link", "set", self.bridge, "up"])

    def _make_credentials(self) -> None:
        keys = self.state_dir / "authorized_keys"
        keys.mkdir(mode=0o755)
        self.root_key_path = self.state_dir / "root_ed25519"
        _sh(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"obft-root-{self.token}",
                "-f",
                str(self.root_key_path),
            ]
        )
        self.root_private_key = self.root_key_path.read_text()
        self.root_public_key = Path(f"{self.root_key_path}.pub").read_text().strip()
        (keys / "root").write_text(self.root_public_key + "\n")
        self.user = f"{PREFIX}u{self.token}"
        self.password = secrets.token_urlsafe(18)
        _sh(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/home/admin",
                "--shell",
                "/bin/bash",
                "--comment",
                "obfleet test host user",
                self.user,
            ]
        )
        self._user_created = True
        proc = subprocess.run(
            ["chpasswd"],
            input=f"{self.user}:{self.password}\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"chpasswd failed: {proc.stderr.strip()}")

    def heal(self) -> None:
        """Undo faults on every host (see NetnsHost.heal)."""
        for host in self.hosts:
            host.heal()

    def close(self) -> None:
        """Remove everything this lab made. Idempotent; tries every step even if one fails,
        then raises LabError listing what could not be cleaned up."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        problems: list[str] = []
        for host in self.hosts:
            try:
                problems += host._destroy()
            except Exception as exc:
                problems.append(f"{host.name}: {exc!r}")
        if self.bridge and _link_exists(self.bridge):
            proc = _sh(["ip", "link", "del", self.bridge], check=False)
            if proc.returncode != 0:
                problems.append(f"ip link del {self.bridge}: {proc.stderr.strip()}")
        if self._user_created:
            _remove_user(self.user, problems)
        if self.state_dir != Path() and self.state_dir.exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)
        HostLab._letters_in_use.discard(self.token[-1:])
        leftovers = self.leftovers()
        if leftovers:
            problems.append(f"left behind: {leftovers}")
        if problems:
            raise LabError("test host teardown incomplete: " + "; ".join(problems))

    def leftovers(self) -> list[str]:
        """Anything of this lab still present (used by close() and the teardown test)."""
        if not self.token:
            return []
        found = [f"netns {n}" for n in _netns_names() if n.startswith(f"{PREFIX}h{self.token}")]
        found += [
            f"link {n}"
            for n in _link_names()
            if n == self.bridge or n.startswith(f"{PREFIX}p{self.token}")
        ]
        if self.user and _user_exists(self.user):
            found.append(f"user {self.user}")
        if self.state_dir != Path() and self.state_dir.exists():
            found.append(f"dir {self.state_dir}")
        return found


# --------------------------------------------------------------------------------------------
# root-namespace inventory and crash leftovers


def _netns_names() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def _link_names() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _remove_user(name: str, problems: list[str]) -> None:
    # The user has no home outside the hosts' tmpfs, so nothing else to remove (-r would fail).
    proc = _sh(["userdel", "--force", name], check=False)
    if proc.returncode != 0 and _user_exists(name):
        problems.append(f"userdel {name}: {proc.stderr.strip()}")


def _used_subnets() -> set[ipaddress.IPv4Network]:
    """/24s of the lab range already on an interface or in a route here."""
    used: set[ipaddress.IPv4Network] = set()
    text = _sh(["ip", "-o", "-4", "addr", "show"]).stdout + _sh(["ip", "-4", "route"]).stdout
    for match in re.finditer(r"\b(\d+\.\d+\.\d+\.\d+)(?:/(\d+))?", text):
        try:
            net = ipaddress.IPv4Network(f"{match[1]}/{match[2] or 32}", strict=False)
        except ValueError:
            continue
        if net.overlaps(LAB_NETWORK):
            if net.prefixlen >= 24:
                used.add(net.supernet(new_prefix=24))
            else:
                used.update(s for s in LAB_NETWORK.subnets(new_prefix=24) if s.overlaps(net))
    return used


def _stale(match: re.Match[str] | None) -> bool:
    return match is not None and not _pid_alive(int(match["pid"], 16))


def cleanup_stale() -> list[str]:
    """Remove namespaces, links, users and state dirs left by labs whose process died.

    Only names of the lab's own pattern whose creating pid no longer exists are touched.
    """
    removed = []
    for ns in _netns_names():
        if _stale(STALE_NAME.match(ns)):
            _kill_and_wait(_netns_pids(ns))
            _sh(["ip", "netns", "del", ns], check=False)
            removed.append(f"netns {ns}")
    for link in _link_names():
        if _stale(STALE_NAME.match(link)) and _link_exists(link):
            _sh(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(PREFIX + "u") and _stale(STALE_NAME.match(entry.pw_name)):
            _remove_user(entry.pw_name, [])
            removed.append(f"user {entry.pw_name}")
    for path in STATE_PARENT.glob(f"{PREFIX}-*"):
        if _stale(STALE_DIR.match(path.name)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"dir {path}")
    return removed


@contextlib.contextmanager
def host_lab(n_hosts: int = 3, **kwargs: str) -> Iterator[HostLab]:
    """`with host_lab(2) as lab:` — a lab that is always torn down."""
    lab = HostLab(n_hosts, **kwargs)
    try:
        yield lab.start()
    finally:
        lab.close()
