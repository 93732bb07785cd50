"""obfleet's SSH layer against real sshd on the test hosts (plus the pure helpers)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncssh
import pytest

from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.hosts import ssh as sshmod
from obfleet.hosts.shell import command, quote, safe_path
from obfleet.hosts.ssh import (
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    Redactor,
    SshAuthError,
    SshConnectError,
    SshConnection,
    SshDisconnected,
    SshPool,
    SshTarget,
    TransferError,
    connect,
    fingerprint,
)
from tests.support.sshkeys import KEY_TYPES, PASSPHRASE, make_key
from tests.support.testhosts import LAB_NETWORK, HostLab, NetnsHost

hosts = pytest.mark.hosts


def root_target(lab: HostLab, host: NetnsHost, **kwargs: str | None) -> SshTarget:
    assert host.ip in lab.addresses and host.ip.startswith(("198.18.", "198.19."))
    return SshTarget(host.ip, 22, "root", private_key=lab.root_private_key, **kwargs)


def user_target(lab: HostLab, host: NetnsHost, **kwargs: str | None) -> SshTarget:
    assert host.ip in lab.addresses
    return SshTarget(host.ip, 22, lab.user, password=lab.password, **kwargs)


def wait_until_gone(host: NetnsHost, pattern: str, timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    while (found := host.pgrep(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


async def wait_until_running(host: NetnsHost, pattern: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not host.pgrep(pattern):
        assert time.monotonic() < deadline, f"{pattern} never started on {host.name}"
        await asyncio.sleep(0.05)


@pytest.fixture
def log_lines() -> list[str]:
    return []


@pytest.fixture
async def conn(
    host_lab: HostLab, test_hosts: list[NetnsHost], log_lines: list[str]
) -> AsyncIterator[SshConnection]:
    c = await connect(root_target(host_lab, test_hosts[0]), timeout=5, log=log_lines.append)
    yield c
    await c.close()


# ---- pure helpers (no hosts) ---------------------------------------------------------------


def test_quote_and_command() -> None:
    assert quote("plain") == "plain"
    assert quote("a b") == "'a b'"
    assert quote(Path("/x y")) == "'/x y'"
    assert quote(5) == "5"
    assert command("echo", "x; rm -rf /", 3) == "echo 'x; rm -rf /' 3"
    with pytest.raises(ValueError):
        command()


@pytest.mark.parametrize(
    "path", ["/", "/home/admin", "/home/admin/obproxy-4.3.1.0/bin/", "/a/b-c_d.e+f@g=h,i:j"]
)
def test_safe_path_accepts_plain_absolute_paths(path: str) -> None:
    assert safe_path(path) == (path.rstrip("/") or "/")


@pytest.mark.parametrize(
    "path",
    [
        "relative/path",
        "",
        "/home/../etc",
        "/home/./admin",
        "/home//admin",
        "/home/admin\n/etc",
        "/home/admin\0",
        "/home/a b",
        "/home/$(id)",
        "/home/`id`",
        "/home/a;b",
        "/home/*",
        "/home/" + "a" * 5000,
    ],
)
def test_safe_path_rejects(path: str) -> None:
    with pytest.raises(ValueError):
        safe_path(path)


def test_redactor_covers_raw_and_quoted_forms() -> None:
    r = Redactor(["p'w d", None, ""])
    cmd = command("login", "--password", "p'w d")
    assert "p" not in r(cmd).replace("login --password ", "")
    assert r("x p'w d y") == "x *** y"
    extended = r.extended(["other"])
    assert extended("other") == "***"
    assert r("other") == "other"


def test_a_long_output_is_cut_at_a_line_start_after_redaction() -> None:
    """A secret (or a `password=...` the task log masks) is never split by the cut."""
    secret = "SuperSecretPass123"
    head = "x" * 100 + "\n"
    middle = f"-o obproxy_sys_password={'a' * 40},x={secret}yyy\n"
    tail = "line\n" * ((sshmod.LOG_TAIL - 30) // 5)
    output = head + middle + tail
    assert len(tail) < sshmod.LOG_TAIL < len(middle + tail)  # the cut falls inside `middle`
    lines: list[str] = []
    result = sshmod.CommandResult(exit_status=0, stdout=output, stderr="")
    host = SimpleNamespace(label="root@h:22")
    SshConnection._log_result(host, lines.append, Redactor([secret]), result, 0.1)  # type: ignore[arg-type]
    logged = "\n".join(lines)
    assert "obproxy_sys_pass" not in logged and "a" * 20 not in logged
    assert "Pass123" not in logged and "yyy" not in logged
    assert logged.endswith("line") and "stdout: …line" in logged


def test_target_repr_hides_credentials() -> None:
    t = SshTarget("198.18.0.9", password="hunter2hunter2", private_key="KEYTEXT")
    assert "hunter2" not in repr(t) and "KEYTEXT" not in repr(t)
    assert t.label == "root@198.18.0.9:22"
    with pytest.raises(ValueError):
        SshTarget("198.18.0.9")
    with pytest.raises(ValueError):
        SshTarget("198.18.0.9", port=0, password="x")


# ---- every OpenSSH key format ----------------------------------------------------------------


@pytest.fixture
def authorize_root_key(host_lab: HostLab) -> Iterator[Callable[[str], None]]:
    """Add public keys to root's authorized_keys on every lab host, taken off again after."""
    path = host_lab.state_dir / "authorized_keys" / "root"
    original = path.read_text()

    def authorize(public_key: str) -> None:
        path.write_text(path.read_text() + public_key)

    yield authorize
    path.write_text(original)


@hosts
@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
@pytest.mark.parametrize("kind", KEY_TYPES)
async def test_every_openssh_key_type_logs_in(
    host_lab: HostLab,
    test_hosts: list[NetnsHost],
    authorize_root_key: Callable[[str], None],
    tmp_path: Path,
    kind: str,
    passphrase: str | None,
) -> None:
    """ssh-keygen's default format, encrypted (bcrypt KDF) when given a passphrase."""
    key = make_key(tmp_path, kind, passphrase)
    authorize_root_key(key.public)
    host = test_hosts[0]
    target = SshTarget(host.ip, 22, "root", private_key=key.private, passphrase=passphrase)
    c = await connect(target, timeout=5)
    try:
        assert (await c.run("id -u", timeout=10)).stdout == "0\n"
    finally:
        await c.close()


# ---- commands ------------------------------------------------------------------------------


@hosts
async def test_run_returns_stdout_stderr_and_exit(conn: SshConnection) -> None:
    result = await conn.run("echo out; echo err >&2; exit 3", timeout=10, check=False)
    assert result.exit_status == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"  # the process-group marker is not part of it
    assert not result.ok


@hosts
async def test_nonzero_exit_raises_with_status_and_stderr(conn: SshConnection) -> None:
    with pytest.raises(CommandFailed) as info:
        await conn.run("echo first >&2; echo boom >&2; exit 7", timeout=10)
    assert info.value.exit_status == 7
    assert "boom" in info.value.stderr_tail
    assert "exited 7" in str(info.value)
    assert info.value.host == conn.label


@hosts
async def test_input_env_and_large_output(conn: SshConnection) -> None:
    assert (await conn.run("cat", input="hello\n", timeout=10)).stdout == "hello\n"
    assert (await conn.run("cat", input=b"\x00\x01", timeout=10)).stdout == "\x00\x01"
    assert (await conn.run("cat", timeout=10)).stdout == ""  # stdin is closed, no hang
    env_result = await conn.run('echo "$A|$B"', env={"A": "x y", "B": "$(id)"}, timeout=10)
    assert env_result.stdout == "x y|$(id)\n"
    with pytest.raises(ValueError):
        await conn.run("true", env={"A;id": "x"}, timeout=10)
    big = await conn.run("head -c 3000000 /dev/zero | tr '\\0' x", timeout=30)
    assert len(big.stdout) == 3_000_000


@hosts
async def test_concurrent_commands_share_one_connection(conn: SshConnection) -> None:
    results = await asyncio.gather(*(conn.run(f"echo {i}", timeout=10) for i in range(20)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]
    assert conn.connect_count == 1


@hosts
async def test_command_builder_prevents_injection(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[0]
    evil = [
        "x; touch /tmp/pwned1",
        "$(touch /tmp/pwned2)",
        "`touch /tmp/pwned3`",
        "x\ntouch /tmp/pwned4",
        "x' && touch /tmp/pwned5 && echo '",
        "x && touch /tmp/pwned6 | cat",
    ]
    for value in evil:
        result = await conn.run(command("printf", "%s", value), timeout=10)
        assert result.stdout == value
    for i in range(1, 7):
        assert not host.file_exists(f"/tmp/pwned{i}")


# ---- authentication and host keys ----------------------------------------------------------


@hosts
async def test_aes_gcm_is_preferred(conn: SshConnection, log_lines: list[str]) -> None:
    # asyncssh's own first choice, chacha20-poly1305, costs about three times the CPU per packet.
    (connected,) = [line for line in log_lines if " connected (host key " in line]
    assert connected.endswith(", cipher aes128-gcm@openssh.com)")


@hosts
async def test_key_auth_logs_in_as_root_on_the_right_host(conn: SshConnection) -> None:
    result = await conn.run("id -u; hostname", timeout=10)
    uid, hostname = result.stdout.split()
    assert uid == "0"
    assert hostname.startswith("obfth")


@hosts
async def test_password_auth(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[1]
    lines: list[str] = []
    async with await connect(user_target(host_lab, host), timeout=5, log=lines.append) as c:
        result = await c.run('id -un; echo "$HOME"; touch /home/admin/by-user', timeout=10)
        assert result.stdout.split() == [host_lab.user, "/home/admin"]
    assert host.file_exists("/home/admin/by-user")
    host.run("rm -f /home/admin/by-user")
    assert lines and not any(host_lab.password in line for line in lines)


@hosts
async def test_wrong_credentials_are_refused(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[1]
    bad = SshTarget(host.ip, username=host_lab.user, password="wrong-password-xyz")
    with pytest.raises(SshAuthError) as info:
        await connect(bad, timeout=10)
    assert "wrong-password-xyz" not in str(info.value)
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with pytest.raises(SshAuthError):
        await connect(SshTarget(host.ip, private_key=other_key), timeout=10)
    with pytest.raises(SshAuthError, match="private key cannot be read"):
        await connect(SshTarget(host.ip, private_key="not a key"), timeout=10)


@hosts
async def test_host_key_is_reported_then_pinned(
    host_lab: HostLab, test_hosts: list[NetnsHost], log_lines: list[str]
) -> None:
    host = test_hosts[2]
    async with await connect(root_target(host_lab, host), timeout=5, log=log_lines.append) as c:
        assert c.host_key == host.host_key
        assert c.host_key_fingerprint == host.host_key_fingerprint()
        assert fingerprint(host.host_key) == host.host_key_fingerprint()
    assert any(host.host_key_fingerprint() in line for line in log_lines)
    pinned = root_target(host_lab, host, host_key=host.host_key + " some-comment")
    async with await connect(pinned, timeout=5) as c:
        assert (await c.run("true", timeout=10)).ok


@hosts
async def test_changed_host_key_is_refused_before_authentication(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[2]
    original = host.host_key
    new = host.regenerate_host_key()  # restarts sshd
    log_before = len(host.sshd_log())
    with pytest.raises(HostKeyChanged) as info:
        await connect(user_target(host_lab, host, host_key=original), timeout=5)
    err = info.value
    assert err.expected_fingerprint == fingerprint(original)
    assert err.actual_fingerprint == fingerprint(new)
    assert err.actual_key == new
    assert host.ip in str(err) and err.expected_fingerprint in str(err)
    assert err.actual_fingerprint in str(err)
    # The password was never offered to the host with the unknown key.
    assert "password" not in host.sshd_log()[log_before:].lower()


@hosts
async def test_key_seen_first_is_pinned_for_reconnects(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[2]
    c = await connect(root_target(host_lab, host), timeout=5)
    try:
        first = c.host_key
        host.regenerate_host_key()
        host.kill_sshd()  # drop the open connection too
        host.start_sshd()
        with pytest.raises(HostKeyChanged) as info:
            await c.run("true", timeout=10)
        assert info.value.expected_key == first
    finally:
        await c.close()


# ---- timeouts and cancellation -------------------------------------------------------------


@hosts
async def test_timeout_kills_the_remote_command(
    conn: SshConnection, test_hosts: list[NetnsHost], log_lines: list[str]
) -> None:
    host = test_hosts[0]
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        await conn.run("sleep 311 | cat; echo never", timeout=1)
    assert time.monotonic() - started < 1 + sshmod.KILL_TIMEOUT
    assert info.value.timeout == 1
    assert wait_until_gone(host, r"^sleep 311") == []
    assert any("timed out" in line for line in log_lines)
    assert (await conn.run("echo still usable", timeout=10)).stdout == "still usable\n"


@hosts
async def test_timeout_kills_a_command_that_ignores_sigterm_and_signal_requests(
    conn: SshConnection, test_hosts: list[NetnsHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SSH signal support (old or other servers) the process group is killed over a
    second channel, with KILL after TERM was ignored."""
    host = test_hosts[0]
    monkeypatch.setattr(asyncssh.SSHClientProcess, "send_signal", lambda self, sig: None)
    with pytest.raises(CommandTimeout):
        await conn.run("trap '' TERM; sleep 312; sleep 313", timeout=1)
    assert wait_until_gone(host, r"^sleep 31[23]") == []


@hosts
async def test_a_timeout_does_not_disturb_other_commands_on_the_connection(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    slow = asyncio.create_task(conn.run("sleep 1; echo done", timeout=20))
    with pytest.raises(CommandTimeout):
        await conn.run("sleep 317", timeout=0.3)
    assert (await slow).stdout == "done\n"
    assert conn.connect_count == 1
    assert wait_until_gone(test_hosts[0], r"^sleep 317") == []


@hosts
async def test_cancellation_kills_the_remote_command(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[0]
    task = asyncio.create_task(conn.run("sleep 314", timeout=60))
    await wait_until_running(host, r"^sleep 314")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until_gone(host, r"^sleep 314") == []


@hosts
async def test_detached_daemons_survive_the_command(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    """What a command deliberately daemonizes (OBProxy) is not killed when the command ends."""
    host = test_hosts[0]
    await conn.run("setsid sleep 315 > /dev/null 2>&1 < /dev/null &", timeout=10)
    try:
        await wait_until_running(host, r"^sleep 315")
    finally:
        host.run("pkill -f 'sleep 315'")


# ---- files ---------------------------------------------------------------------------------


@hosts
async def test_put_file_verifies_and_sets_mode(
    conn: SshConnection, test_hosts: list[NetnsHost], tmp_path: Path, log_lines: list[str]
) -> None:
    host = test_hosts[0]
    data = os.urandom(1_500_000)
    local = tmp_path / "pkg.bin"
    local.write_bytes(data)
    remote = "/home/admin/obproxy-test/bin/pkg.bin"
    digest = await conn.put_file(local, remote, 0o750)
    assert digest == hashlib.sha256(data).hexdigest()
    assert host.read_bytes(remote) == data
    assert host.run(["stat", "-c", "%a", remote]).stdout.strip() == "750"
    assert host.run(["ls", "-a", "/home/admin/obproxy-test/bin"]).stdout.split() == [
        ".",
        "..",
        "pkg.bin",
    ]
    assert any("sha256sum" in line for line in log_lines)
    local.write_bytes(b"second version")
    await conn.put_file(local, remote, 0o600)
    assert host.read_bytes(remote) == b"second version"
    assert host.run(["stat", "-c", "%a", remote]).stdout.strip() == "600"
    host.run("rm -rf /home/admin/obproxy-test")


@hosts
async def test_put_files_checks_all_at_once_and_places_none_unless_all_arrived(
    conn: SshConnection,
    test_hosts: list[NetnsHost],
    tmp_path: Path,
    log_lines: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = test_hosts[0]
    home = "/home/admin/multi"
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    alpha.write_bytes(b"alpha 1")
    beta.write_bytes(b"beta 1")
    files = [(alpha, f"{home}/bin/alpha", 0o755), (beta, f"{home}/lib/beta", 0o644)]
    try:
        digests = await conn.put_files(files)
        assert digests == [hashlib.sha256(d).hexdigest() for d in (b"alpha 1", b"beta 1")]
        assert host.read_file(f"{home}/bin/alpha") == "alpha 1"
        assert host.read_file(f"{home}/lib/beta") == "beta 1"
        assert host.run(["stat", "-c", "%a", f"{home}/bin/alpha"]).stdout.strip() == "755"
        checks = [line for line in log_lines if "sha256sum --" in line]
        assert len(checks) == 1 and "alpha" in checks[0] and "beta" in checks[0], log_lines

        # The second file arrives damaged: neither new version takes the old ones' place.
        alpha.write_bytes(b"alpha 2")
        beta.write_bytes(b"beta 2")
        check = conn.sha256_many

        async def second_damaged(paths: list[str], **kwargs: Any) -> dict[str, str]:
            found = await check(paths, **kwargs)
            return {p: "0" * 64 if "/beta" in p else d for p, d in found.items()}

        monkeypatch.setattr(conn, "sha256_many", second_damaged)
        with pytest.raises(TransferError, match=f"{home}/lib/beta: checksum mismatch"):
            await conn.put_files(files)
        assert host.read_file(f"{home}/bin/alpha") == "alpha 1"
        assert host.read_file(f"{home}/lib/beta") == "beta 1"
        leftovers = host.run(f"find {home} -name '*.obfleet-tmp-*'").stdout
        assert leftovers == "", leftovers
    finally:
        host.run(f"rm -rf {home}")


@hosts
async def test_checksum_mismatch_is_refused_and_cleaned_up(
    conn: SshConnection, test_hosts: list[NetnsHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = test_hosts[0]

    async def corrupted(paths: list[str], **kwargs: object) -> dict[str, str]:
        return dict.fromkeys(paths, "0" * 64)

    monkeypatch.setattr(conn, "sha256_many", corrupted)
    with pytest.raises(TransferError, match="checksum mismatch"):
        await conn.put_bytes(b"payload", "/home/admin/corrupt/file.conf")
    assert host.run("ls -A /home/admin/corrupt").stdout == ""
    host.run("rm -rf /home/admin/corrupt")


@hosts
async def test_an_upload_removes_what_an_interrupted_one_left(
    conn: SshConnection, test_hosts: list[NetnsHost], log_lines: list[str]
) -> None:
    host = test_hosts[0]
    stale = "/home/admin/leftover/obproxy.obfleet-tmp-0123456789ab"
    other = "/home/admin/leftover/obproxyd.sh.obfleet-tmp-0123456789ab"  # another file's
    host.run(f"mkdir -p /home/admin/leftover && echo half > {stale} && echo x > {other}")
    try:
        await conn.put_bytes(b"whole", "/home/admin/leftover/obproxy")
        listed = host.run("ls -A /home/admin/leftover").stdout.split()
        assert sorted(listed) == ["obproxy", "obproxyd.sh.obfleet-tmp-0123456789ab"]
        assert host.read_file("/home/admin/leftover/obproxy") == "whole"
        assert any(f"removing {stale}" in line for line in log_lines), log_lines
    finally:
        host.run("rm -rf /home/admin/leftover")


@hosts
async def test_put_bytes_read_text_exists(conn: SshConnection, test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[0]
    await conn.put_bytes(b"name=obproxy\n", "/home/admin/etc/x.conf")
    assert await conn.read_text("/home/admin/etc/x.conf") == "name=obproxy\n"
    assert host.read_file("/home/admin/etc/x.conf") == "name=obproxy\n"
    assert await conn.exists("/home/admin/etc/x.conf")
    assert await conn.exists("/home/admin/etc")
    assert not await conn.exists("/home/admin/nope")
    with pytest.raises(FileNotFoundError):
        await conn.read_text("/home/admin/nope")
    with pytest.raises(TransferError, match="larger than"):
        await conn.read_bytes("/home/admin/etc/x.conf", max_bytes=4)
    with pytest.raises(ValueError):
        await conn.put_bytes(b"x", "/home/admin/../etc/passwd")
    with pytest.raises(ValueError):
        await conn.read_text("relative")
    host.run("rm -rf /home/admin/etc")


@hosts
async def test_upload_to_full_disk_fails_cleanly(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[0]
    host.fill_disk()
    try:
        with pytest.raises(TransferError):
            await conn.put_bytes(os.urandom(1_000_000), "/home/admin/full/blob")
    finally:
        host.free_disk()
    assert "obfleet-tmp" not in host.run("ls -A /home/admin/full 2>/dev/null").stdout
    host.run("rm -rf /home/admin/full")


# ---- redaction -----------------------------------------------------------------------------


@hosts
async def test_secrets_are_redacted_in_logs_and_errors(
    conn: SshConnection, log_lines: list[str]
) -> None:
    secret = "Pr0xyro-pa$$ 'w0rd"
    result = await conn.run(command("echo", secret), timeout=10, redact=[secret])
    assert result.stdout == secret + "\n"  # the caller still gets the real output
    with pytest.raises(CommandFailed) as info:
        await conn.run(
            command("sh", "-c", 'echo "bad $0" >&2; exit 1', secret), timeout=10, redact=[secret]
        )
    assert secret not in str(info.value) and "***" in str(info.value)
    assert secret not in info.value.result.stderr
    text = "\n".join(log_lines)
    assert "***" in text
    assert secret not in text and quote(secret) not in text
    assert "w0rd" not in text


@hosts
async def test_pool_level_secrets_and_credentials_never_logged(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    lines: list[str] = []
    pool = SshPool(connect_timeout=5, log=lines.append, redact=["pool-wide-secret"])
    try:
        c = await pool.get("h2", user_target(host_lab, test_hosts[1]))
        await c.run(f"echo pool-wide-secret {host_lab.password}", timeout=10)
    finally:
        await pool.close_all()
    text = "\n".join(lines)
    assert "pool-wide-secret" not in text and host_lab.password not in text
    assert text.count("***") >= 2


# ---- network faults and the pool -----------------------------------------------------------


@hosts
async def test_cut_link_gives_a_clear_connect_error_within_the_timeout(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[1]
    host.cut_link()
    try:
        started = time.monotonic()
        with pytest.raises(SshConnectError) as info:
            await connect(root_target(host_lab, host), timeout=2)
        assert time.monotonic() - started < 4
        assert host.ip in str(info.value)
    finally:
        host.restore_link()


@hosts
@pytest.mark.slow
async def test_cut_link_during_a_command_times_out_then_recovers(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[1]
    c = await connect(root_target(host_lab, host), timeout=3)
    try:
        host.cut_link()
        try:
            started = time.monotonic()
            with pytest.raises(CommandTimeout):
                await c.run("echo hi", timeout=2)
            assert time.monotonic() - started < 2 + sshmod.KILL_TIMEOUT + 10
        finally:
            host.restore_link()
        assert (await c.run("echo back", timeout=10)).stdout == "back\n"
        assert c.connect_count == 2
    finally:
        await c.close()


def test_pool_with_timeout_and_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = SshPool.with_timeout(8)
    # A silent connection is lost after KEEPALIVE_COUNT_MAX + 1 unanswered intervals: 8 s.
    assert (pool.connect_timeout, pool.keepalive_interval) == (8, 2)
    with pytest.raises(ValueError):
        SshPool.with_timeout(0)
    monkeypatch.setenv("OBFLEET_SSH_TIMEOUT", "4")
    monkeypatch.setenv("OBFLEET_DATA_DIR", str(tmp_path))
    ctx = AppContext.open(Settings.from_env())
    try:
        assert (ctx.ssh.connect_timeout, ctx.ssh.keepalive_interval) == (4, 1)
    finally:
        ctx.close()


@hosts
async def test_a_link_cut_during_a_command_is_a_disconnect_long_before_its_timeout(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[1]
    pool = SshPool.with_timeout(2)
    try:
        c = await pool.get("h", root_target(host_lab, host))
        task = asyncio.create_task(c.run("sleep 317", timeout=600))
        await wait_until_running(host, r"^sleep 317")
        host.cut_link()
        try:
            # The command's own timeout is far away; the unanswered keepalives end it. (The
            # bound only keeps a broken keepalive from hanging the suite.)
            with pytest.raises(SshDisconnected) as info:
                await asyncio.wait_for(task, 120)
            assert host.ip in str(info.value) and "connection lost" in str(info.value)
            assert "the host stopped answering" in str(info.value)
        finally:
            host.restore_link()
        host.run("pkill -f 'sleep 317'")
        assert (await c.run("echo back", timeout=10)).stdout == "back\n"
        assert c.connect_count == 2
    finally:
        await pool.close_all()


@hosts
async def test_sshd_killed_during_a_command_is_a_disconnect(
    conn: SshConnection, test_hosts: list[NetnsHost]
) -> None:
    host = test_hosts[0]
    task = asyncio.create_task(conn.run("sleep 316", timeout=30))
    await wait_until_running(host, r"^sleep 316")
    host.kill_sshd()
    started = time.monotonic()
    with pytest.raises(SshDisconnected):
        await task
    assert time.monotonic() - started < 5
    host.run("pkill -f 'sleep 316'")
    host.start_sshd()
    assert (await conn.run("echo back", timeout=10)).stdout == "back\n"


@hosts
async def test_refused_connection(host_lab: HostLab, test_hosts: list[NetnsHost]) -> None:
    host = test_hosts[2]
    host.kill_sshd()
    with pytest.raises(SshConnectError, match="refused"):
        await connect(root_target(host_lab, host), timeout=5)


@hosts
async def test_pool_reuses_one_connection_and_reconnects_after_sshd_restart(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    h1, h2, _ = test_hosts
    pool = SshPool(connect_timeout=5)
    try:
        t1 = root_target(host_lab, h1)
        c1 = await pool.get("h1", t1)
        assert await pool.get("h1", t1) is c1
        for _ in range(3):
            await c1.run("true", timeout=10)
        assert c1.connect_count == 1
        sessions = h1.run(f"ss -Htn state established '( sport = :22 )' dst {h1.lab.gateway_ip}")
        assert len(sessions.stdout.splitlines()) == 1
        assert len(pool) == 1 and "h1" in pool

        # A target pinned to the key already seen keeps the connection.
        assert await pool.get("h1", root_target(host_lab, h1, host_key=c1.host_key)) is c1

        h1.kill_sshd()
        h1.start_sshd()
        assert (await c1.run("echo again", timeout=10)).stdout == "again\n"  # same object
        assert c1.connect_count == 2
        h1.kill_sshd()
        h1.start_sshd()
        deadline = time.monotonic() + 30
        while c1.connected:  # asyncssh has yet to read the end of the old connection
            assert time.monotonic() < deadline, "the killed sshd's connection never ended"
            await asyncio.sleep(0.05)
        assert await pool.get("h1", t1) is c1
        assert c1.connected and c1.connect_count == 3

        c2 = await pool.get("h2", root_target(host_lab, h2))
        assert c2 is not c1
        # A different pinned key replaces the connection and is refused.
        with pytest.raises(HostKeyChanged):
            await pool.get("h1", root_target(host_lab, h1, host_key=h2.host_key))
    finally:
        await pool.close_all()
    assert len(pool) == 0
    assert not c1.connected and not c2.connected


@hosts
async def test_a_replaced_connection_lets_commands_under_way_finish_and_never_reconnects(
    host_lab: HostLab, test_hosts: list[NetnsHost]
) -> None:
    """An operator changes a host's credential while a task runs a command there: that
    command ends normally, and nothing logs in with the old credential again."""
    host = test_hosts[0]
    pool = SshPool(connect_timeout=5)
    try:
        old = await pool.get("h", root_target(host_lab, host))
        under_way = asyncio.create_task(old.run("sleep 1.5 && echo finished", timeout=30))
        await wait_until_running(host, "sleep 1.5")
        new = await pool.get("h", user_target(host_lab, host))
        assert new is not old and new.connected
        assert (await under_way).stdout == "finished\n"
        assert not old.connected
        with pytest.raises(SshDisconnected, match="credentials or host key changed"):
            await old.run("true", timeout=10)
        assert old.connect_count == 1
        assert (await new.run("id -un", timeout=10)).stdout == f"{host_lab.user}\n"
    finally:
        await pool.close_all()


@hosts
def test_lab_addresses_are_test_addresses(host_lab: HostLab) -> None:
    import ipaddress

    assert all(ipaddress.IPv4Address(a) in LAB_NETWORK for a in host_lab.addresses)
