"""The host list reads its page as rows, not ORM objects, and shows each host as the
documented HostOut, its detail the same as its row on the list."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import event, update

from obfleet.api.schemas.hosts import HostOut
from obfleet.store.models.hosts import Host
from tests.hosts.conftest import created_tasks, get_host, list_hosts, password_credential
from tests.hosts.test_hosts_api import put_obproxy

# A host key as Prepare host pins it, and its fingerprint as `ssh-keygen -l` shows it.
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@contextmanager
def loaded_hosts(client: TestClient) -> Iterator[list[int]]:
    """The ids of the Host objects the ORM loads meanwhile."""
    seen: list[int] = []

    def record(target: Host, _context: object) -> None:
        seen.append(target.id)

    event.listen(Host, "load", record)
    try:
        yield seen
    finally:
        event.remove(Host, "load", record)


def test_a_page_of_hosts_is_read_as_rows_and_shows_the_documented_host(client: TestClient):
    credential = password_credential(client)
    addresses = [f"198.18.7.{n}" for n in range(1, 6)]
    ids = [t["hostId"] for t in created_tasks(client, credential, *addresses)]
    with client.app.state.ctx.db.transaction() as session:
        session.execute(update(Host).where(Host.id == ids[1]).values(host_key=HOST_KEY))
    put_obproxy(client, ids[3])

    with loaded_hosts(client) as loaded:
        page = list_hosts(client, size=2000)
    assert loaded == [], "the list loaded Host objects"
    hosts = {h["id"]: h for h in page["contents"]}
    assert sorted(hosts) == sorted(ids) and page["page"]["totalElements"] == 5
    for host in hosts.values():
        documented = HostOut.model_validate(host).model_dump(mode="json", by_alias=True)
        assert host == documented
        assert host == get_host(client, host["id"])
    assert hosts[ids[1]]["hostKeyFingerprint"] == "SHA256:" + fingerprint_of(HOST_KEY)
    assert [h["hostKeyFingerprint"] for i, h in hosts.items() if i != ids[1]] == [None] * 4
    assert hosts[ids[3]]["services"] == [
        {"name": "pc1", "version": "4.2.1.0", "type": "OB_PROXY", "softwarePackageId": None}
    ]
    assert (hosts[ids[0]]["idcId"], hosts[ids[0]]["regionName"]) == (1, "default")


def fingerprint_of(openssh_key: str) -> str:
    """SHA256 of the key's blob, base64 without padding, as OpenSSH writes it."""
    blob = base64.b64decode(openssh_key.split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
