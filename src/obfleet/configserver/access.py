"""Who may change what the config server answers: registrations and deletes.

ob-configserver takes them from anyone. obfleet takes them from loopback and from the addresses
of the root servers it knows (recorded clusters' and registered ones'), where observers post
from; OBFLEET_CONFIGSERVER_ALLOW adds networks (`0.0.0.0/0,::/0`: anyone, as ob-configserver),
and OBFLEET_CONFIGSERVER_TOKEN, when set, must also be sent as the `Token` query parameter
(observers and OBD carry it in the config URL they are given). Reads stay open: OBProxies poll
them without credentials.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.config import Settings
from obfleet.configserver.errors import ConfigServerError
from obfleet.store.models.configserver import RootServiceRegistration
from obfleet.store.models.ob_clusters import ObCluster

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
TOKEN_PARAM = "Token"


@dataclass(frozen=True)
class WritePolicy:
    """The settings writes are checked against (obfleet.config.Settings: OBFLEET_CONFIGSERVER_*)."""

    allow: tuple[Network, ...]
    token: str | None
    max_clusters: int


def write_policy(settings: Settings) -> WritePolicy:
    return WritePolicy(
        settings.configserver_allow,
        settings.configserver_token,
        settings.configserver_max_clusters,
    )


def _address(text: str) -> Address | None:
    """An address as a server sees it: IPv4 clients of a dual-stack socket as IPv4."""
    try:
        address = ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hosts(servers: Iterable[dict[str, Any]]) -> Iterable[Address | None]:
    return (_address(str(s.get("address", "")).rpartition(":")[0]) for s in servers)


def known_addresses(session: Session) -> set[Address | None]:
    """The root servers' addresses of every recorded and registered cluster."""
    lists = [*session.scalars(select(ObCluster.root_servers))]
    for rs_list, readonly in session.execute(
        select(RootServiceRegistration.rs_list, RootServiceRegistration.readonly_rs_list)
    ):
        lists += [rs_list, readonly]
    return {address for servers in lists for address in _hosts(servers or [])}


def _allowed(session: Session, policy: WritePolicy, client: str) -> bool:
    address = _address(client)
    if address is None:
        return False
    if address.is_loopback or any(address in network for network in policy.allow):
        return True
    return address in known_addresses(session)


def check_writer(session: Session, policy: WritePolicy, client: str, token: str) -> None:
    """Refuse (403) a write from an address the policy does not allow, or without its token."""
    if policy.token is not None and not hmac.compare_digest(token.encode(), policy.token.encode()):
        raise ConfigServerError(403, f"forbidden: a write needs the {TOKEN_PARAM} parameter")
    if not _allowed(session, policy, client):
        raise ConfigServerError(
            403,
            f"forbidden: {client[:64]} may not change registrations (allowed: loopback, known"
            " root servers and OBFLEET_CONFIGSERVER_ALLOW)",
        )
