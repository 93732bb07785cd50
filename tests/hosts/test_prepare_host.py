"""The "Prepare host" task against real test hosts: key and password logins, facts, pinned keys,
an unreachable host or one missing a tool left OFFLINE (then retried), a changed host key
refused, no secret shown."""

from __future__ import annotations

import platform
import pwd

import pytest

from obfleet.hosts.ssh import DEFAULT_CONNECT_TIMEOUT, HostKeyChanged
from obfleet.records import host_access
from obfleet.store.models.hosts import Host
from tests.conftest import ADMIN, wait_task
from tests.hosts.conftest import add_credential, created_tasks, get_host
from tests.support.testhosts import HostLab, NetnsHost

pytestmark = pytest.mark.hosts

# Link-cut hosts drop packets; a short connect timeout keeps those tests quick.
CONNECT_TIMEOUT = 2.0
NOT_A_PROGRAM = "/tmp/not-a-program"


def key_credential(client, lab: HostLab) -> int:
    return add_credential(
        client, "root_key", authType="PRIVATE_KEY", username="root", privateKey=lab.root_private_key
    )


def user_credential(client, lab: HostLab) -> int:
    return add_credential(
        client, "lab_user", authType="PASSWORD", username=lab.user, password=lab.password
    )


def subtask_logs(client, task: dict) -> dict[str, str]:
    logs = {}
    for sub in task["subtasks"]:
        r = client.get(
            f"/api/v2/tasks/instances/{task['id']}/subtasks/{sub['id']}/log", headers=ADMIN
        )
        assert r.status_code == 200, r.text
        logs[sub["name"]] = r.json()["data"]["log"]
    return logs


def secrets_of(lab: HostLab) -> list[str]:
    """The password and every line of the private key's body."""
    body = [line for line in lab.root_private_key.splitlines() if "PRIVATE KEY" not in line]
    return [lab.password, *(line for line in body if line.strip())]


def assert_no_secret(lab: HostLab, *texts: str) -> None:
    for text in texts:
        for secret in secrets_of(lab):
            assert secret not in text


def stored_host(client, host_id: int) -> Host:
    with client.app.state.ctx.db.session() as session:
        host = session.get(Host, host_id)
        assert host is not None
        session.expunge(host)
        return host


def expected_os() -> tuple[str | None, str | None]:
    # The test hosts share the root file system, so their /etc/os-release is this one.
    release = platform.freedesktop_os_release()
    return release.get("NAME"), release.get("VERSION_ID")


def test_prepare_hosts_with_key_and_password_logins(engine_client, lab, hosts):
    client = engine_client
    by_key = created_tasks(client, key_credential(client, lab), *(h.ip for h in hosts[:3]))
    by_password = created_tasks(client, user_credential(client, lab), hosts[3].ip)
    responses = []
    for task, host in zip(by_key + by_password, hosts, strict=True):
        assert task["name"] == "Prepare host" and task["hostId"]
        done = wait_task(client, task["id"])
        assert done["status"] == "SUCCESSFUL", subtask_logs(client, done)
        logs = subtask_logs(client, done)
        assert "host key pinned" in logs["Pre check for create host"]
        assert "all tools present" in logs["Pre check for create host"]
        assert "host is ONLINE" in logs["Update host status"]
        if host in hosts[:3]:  # root: the default run-as user is created on the host only
            assert "user admin created" in logs["Create admin user"]
            assert host.run("id -un admin").stdout.strip() == "admin"
        else:
            assert "user admin is missing" in logs["Create admin user"]

        view = get_host(client, task["hostId"])
        assert view["status"] == "ONLINE" and view["innerIpAddress"] == host.ip
        assert view["name"] == host.name  # the host name it reported (its UTS name)
        assert view["architecture"] == platform.machine()
        assert (view["operatingSystem"], view["operatingSystemRelease"]) == expected_os()
        assert view["hostKeyFingerprint"] == host.host_key_fingerprint()
        assert stored_host(client, task["hostId"]).host_key == host.host_key
        responses += [str(done), str(view), *logs.values()]
    listed = client.get("/api/v2/compute/hosts", headers=ADMIN, params={"status": "ONLINE"})
    assert listed.json()["data"]["page"]["totalElements"] == 4
    with pytest.raises(KeyError):
        pwd.getpwnam("admin")  # not on the machine the hosts share /etc with
    assert_no_secret(lab, listed.text, *responses)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("cut_link", "no SSH connection within"), ("kill_sshd", "Connection refused")],
)
def test_unreachable_host_fails_offline_and_a_retry_brings_it_online(
    engine_client, lab, hosts, fault, reason
):
    client = engine_client
    client.app.state.ctx.ssh.connect_timeout = CONNECT_TIMEOUT
    host: NetnsHost = hosts[0]
    getattr(host, fault)()
    (task,) = created_tasks(client, key_credential(client, lab), host.ip)
    done = wait_task(client, task["id"])
    assert done["status"] == "FAILED"
    statuses = {s["name"]: s["status"] for s in done["subtasks"]}
    assert statuses == {
        "Pre check for create host": "FAILED",
        "Collect host facts": "PENDING",
        "Create admin user": "PENDING",
        "Update host status": "PENDING",
    }
    log = subtask_logs(client, done)["Pre check for create host"]
    assert reason in log and f"host {task['hostId']} is OFFLINE" in log
    view = get_host(client, task["hostId"])
    assert view["status"] == "OFFLINE" and view["hostKeyFingerprint"] is None

    lab.heal()  # the link is back, sshd runs again
    # The retry logs in for real: give it the usual timeout, not the one meant for the fault.
    ssh = client.app.state.ctx.ssh
    ssh.connect_timeout = DEFAULT_CONNECT_TIMEOUT
    client.portal.call(ssh.close_all)  # the pooled connection keeps the timeout it was made with
    r = client.post(f"/api/v2/tasks/instances/{task['id']}/retry", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
    view = get_host(client, task["hostId"])
    assert view["status"] == "ONLINE" and view["hostKeyFingerprint"] == host.host_key_fingerprint()
    assert_no_secret(lab, log, str(view))


def test_a_changed_host_key_is_refused(engine_client, lab, hosts):
    client = engine_client
    ctx = client.app.state.ctx
    host: NetnsHost = hosts[1]
    credential = key_credential(client, lab)
    (task,) = created_tasks(client, credential, host.ip)
    assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
    pinned, pinned_fingerprint = host.host_key, host.host_key_fingerprint()

    # The host is "reinstalled": a new key, and every open session (the pooled one too) gone.
    host.regenerate_host_key(restart=False)
    host.kill_sshd()
    host.start_sshd()
    with pytest.raises(HostKeyChanged) as refused:
        client.portal.call(host_access.connect, ctx, task["hostId"])
    assert refused.value.expected_fingerprint == pinned_fingerprint
    assert refused.value.actual_fingerprint == host.host_key_fingerprint() != pinned_fingerprint
    assert stored_host(client, task["hostId"]).host_key == pinned
    assert get_host(client, task["hostId"])["hostKeyFingerprint"] == pinned_fingerprint

    # The way forward is explicit: forget the host and add it again, which pins the new key.
    assert client.delete(f"/api/v2/compute/hosts/{task['hostId']}", headers=ADMIN).is_success
    (again,) = created_tasks(client, credential, host.ip)
    assert wait_task(client, again["id"])["status"] == "SUCCESSFUL"
    assert get_host(client, again["hostId"])["hostKeyFingerprint"] == host.host_key_fingerprint()


def test_a_host_missing_a_tool_is_left_offline_with_its_key_pinned(engine_client, lab, hosts):
    client = engine_client
    host: NetnsHost = hosts[2]
    # Hide sha256sum on this host only (its mount namespace is private): a non-executable
    # file over it is what `command -v` reports as missing.
    host.run(f"install -m 0644 /dev/null {NOT_A_PROGRAM}", check=True)
    host.run(f"mount --bind {NOT_A_PROGRAM} /usr/bin/sha256sum", check=True)
    try:
        (task,) = created_tasks(client, key_credential(client, lab), host.ip)
        done = wait_task(client, task["id"])
        assert done["status"] == "FAILED"
        log = subtask_logs(client, done)["Pre check for create host"]
        assert "missing: sha256sum" in log and "host key pinned" in log
        view = get_host(client, task["hostId"])
        assert view["status"] == "OFFLINE"
        assert view["hostKeyFingerprint"] == host.host_key_fingerprint()
    finally:
        host.run("umount /usr/bin/sha256sum", check=True)
    r = client.post(f"/api/v2/tasks/instances/{task['id']}/retry", headers=ADMIN)
    assert r.status_code == 200, r.text
    done = wait_task(client, task["id"])
    assert done["status"] == "SUCCESSFUL"
    assert (
        "host key matches the pinned key" in subtask_logs(client, done)["Pre check for create host"]
    )
    assert get_host(client, task["hostId"])["status"] == "ONLINE"
