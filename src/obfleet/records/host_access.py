"""Reaching a recorded host over SSH: its credential opened, its pinned key enforced."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.errors import ApiError, ErrorCode
from obfleet.hosts.ssh import SshConnection, SshTarget
from obfleet.records import credentials
from obfleet.security.secrets import SecretBox
from obfleet.store.models.hosts import Host


def get_host(session: Session, host_id: int) -> Host:
    host = session.get(Host, host_id)
    if host is None:
        raise ApiError(ErrorCode.HOST_NOT_FOUND, host_id)
    return host


def target_for(session: Session, box: SecretBox, host: Host) -> SshTarget:
    secret = credentials.reveal(session, box, host.credential_id)
    key = secret.auth_type == "PRIVATE_KEY"
    return SshTarget(
        address=host.inner_ip_address,
        port=host.ssh_port,
        username=secret.username,
        password=None if key else secret.secret,
        private_key=secret.secret if key else None,
        passphrase=secret.passphrase,
        host_key=host.host_key,
    )


async def connect(app: AppContext, host_id: int) -> SshConnection:
    """The pooled connection to a host (one per host, shared by every task touching it)."""

    def load() -> SshTarget:
        with app.db.session() as session:
            return target_for(session, app.secrets, get_host(session, host_id))

    target = await asyncio.to_thread(load)
    return await app.ssh.get(str(host_id), target)
