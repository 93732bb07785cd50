"""Hosts: recording them (each with its "Prepare host" task), finding them, forgetting them.

What a host record means: an address obfleet reaches over SSH with a HOST credential from the
password box. A new host is NEW until its "Prepare host" task (flows/prepare_host.py) has
reached it, pinned its key and read its facts (ONLINE), or failed to (OFFLINE).

Regions, IDCs and host types: OCP makes every host name an IDC and a host type. obfleet keeps
those minimal, one default IDC (in one default region) and one default host type, because
nothing obfleet does depends on them. `idcId` and `typeId` are optional and accepted whatever
their value, and every host is recorded in the default IDC and type, so OCP clients that send
the ids of their own OCP work unchanged.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.engine.flow import TaskSubject, submit
from obfleet.engine.targets import running_tasks_on
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.flows import prepare_host
from obfleet.logs import note
from obfleet.records import credentials, targets
from obfleet.records.host_access import get_host
from obfleet.records.host_views import OB_PROXY, host_rows
from obfleet.services.users import Principal
from obfleet.store.models.hosts import Host, HostStatus
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.refs import referencing_tables

KINDS = ("DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER")
STATUSES = tuple(HostStatus)
SERVICE_TYPES = (
    "OB_CLUSTER",
    "OB_PROXY",
    "OCP_AGENT",
    "BACKUP_AGENT",
    "RESTORE_AGENT",
    "BACKUP_RESTORE_AGENT",
    "OMS",
)
MAX_HOSTS_PER_REQUEST = 200

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. Nothing a
# shell or ssh option parser could read as syntax (no leading '-', no spaces, no quotes).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_MAX_HOSTNAME = 253


@dataclass(frozen=True)
class Location:
    """An IDC, host type or region as OCP names them: obfleet has exactly one of each."""

    id: int
    name: str


DEFAULT_REGION = Location(1, "default")
DEFAULT_IDC = Location(1, "default")
DEFAULT_TYPE = Location(1, "default")


@dataclass(frozen=True)
class HostIn:
    inner_ip_address: str
    serial_number: str | None = None


@dataclass(frozen=True)
class BatchCreateIn:
    hosts: list[HostIn]
    ssh_port: int
    kind: str
    credential_id: int
    alias: str | None = None
    description: str | None = None


# --- validation ---------------------------------------------------------------------------


def normalize_address(text: str, field: str = "innerIpAddress") -> str:
    """The canonical form of an IPv4/IPv6 literal or a host name; anything else is refused.

    Canonical, so that `::1` and `0::1`, or `Host1` and `host1`, are recognised as the same
    host by the duplicate check. Zone ids (`fe80::1%eth0`), the unspecified and multicast
    addresses are refused: none of them names one host. So are names the resolver reads as an
    IPv4 address in another form (`010.0.0.10` is 8.0.0.10 to getaddrinfo, `0x0a.0.0.1` and
    `167772161` are 10.0.0.1): they would bypass the duplicate check, and the address shown
    would not be the machine reached.
    """
    value = text.strip()
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return _host_name(text, value, field)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise bad_request(f"{field} '{text}' must not carry a zone id")
    if address.is_unspecified or address.is_multicast:
        raise bad_request(f"{field} '{text}' does not name one host")
    return str(address)


def _host_name(text: str, value: str, field: str) -> str:
    if len(value) > _MAX_HOSTNAME or not _HOSTNAME.fullmatch(value):
        raise bad_request(f"{field} '{text}' is neither an IPv4/IPv6 address nor a host name")
    if value.rsplit(".", 1)[-1].isdigit() or _inet_aton_reads(value):
        raise bad_request(
            f"{field} '{text}' is not a host name: the resolver reads it as an IPv4 address "
            "(octal, hexadecimal or shortened form, or a last label of digits only); write "
            "the address as four decimal numbers, such as 10.0.0.1"
        )
    return value.lower()


def _inet_aton_reads(value: str) -> bool:
    try:
        socket.inet_aton(value)
    except OSError:
        return False
    return True


def check_text(value: str | None, field: str) -> None:
    """Free text (alias, description...) holds no control characters: no line breaks, no NUL
    (which PostgreSQL cannot store), no escape sequences for the terminal that shows it."""
    if value is not None and any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise bad_request(f"{field} must not contain control characters (line breaks, NUL...)")


def _check_request(session: Session, request: BatchCreateIn) -> list[str]:
    """Validate a batchCreate request; returns the normalized addresses, in request order."""
    if not request.hosts:
        raise bad_request("hostBasicDataList must list at least one host")
    if len(request.hosts) > MAX_HOSTS_PER_REQUEST:
        raise bad_request(f"hostBasicDataList lists more than {MAX_HOSTS_PER_REQUEST} hosts")
    if not 1 <= request.ssh_port <= 65535:
        raise bad_request(f"sshPort {request.ssh_port} is outside 1-65535")
    if request.kind not in KINDS:
        raise bad_request(f"kind '{request.kind}' must be one of {', '.join(KINDS)}")
    if request.alias is not None and len(request.hosts) > 1:
        raise bad_request("alias can only be given when adding a single host")
    check_text(request.alias, "alias")
    check_text(request.description, "description")
    for i, item in enumerate(request.hosts):
        check_text(item.serial_number, f"hostBasicDataList[{i}].serialNumber")
    credentials.get(session, request.credential_id, target_type="HOST")
    addresses = [normalize_address(h.inner_ip_address) for h in request.hosts]
    if len(set(addresses)) != len(addresses):
        twice = sorted({a for a in addresses if addresses.count(a) > 1})
        raise bad_request(f"hostBasicDataList lists {', '.join(twice)} more than once")
    _check_not_recorded(session, addresses, request.ssh_port)
    return addresses


def _check_not_recorded(session: Session, addresses: list[str], ssh_port: int) -> None:
    found = session.scalar(
        select(Host.inner_ip_address)
        .where(Host.inner_ip_address.in_(addresses), Host.ssh_port == ssh_port)
        .limit(1)
    )
    if found is not None:
        raise ApiError(ErrorCode.HOST_EXISTS, found, ssh_port)


# --- operations ---------------------------------------------------------------------------


def batch_create(session: Session, request: BatchCreateIn, principal: Principal) -> list[int]:
    """Record the hosts and submit one "Prepare host" task each; returns the task ids.

    All or nothing: a bad or duplicate host refuses the whole request. A duplicate that slips
    past the check (two requests at once) is caught by the (address, port) unique constraint.
    """
    addresses = _check_request(session, request)
    task_ids = []
    for address, item in zip(addresses, request.hosts, strict=True):
        host = Host(
            name=address,
            inner_ip_address=address,
            ssh_port=request.ssh_port,
            credential_id=request.credential_id,
            kind=request.kind,
            status=HostStatus.NEW,
            alias=request.alias,
            description=request.description,
            serial_number=item.serial_number,
            idc_name=DEFAULT_IDC.name,
            type_name=DEFAULT_TYPE.name,
        )
        session.add(host)
        try:
            session.flush()
        except IntegrityError:
            raise ApiError(ErrorCode.HOST_EXISTS, address, request.ssh_port) from None
        note("objectIds", host.id)  # the request's audit record names the hosts it made
        task_ids.append(_submit_prepare(session, host, principal))
    return task_ids


def prepare_again(session: Session, host_id: int, principal: Principal) -> int:
    """Submit "Prepare host" again for a recorded host (its last one failed and the cause is
    fixed, or the host changed: a new OS, tools installed); returns the task id. Refused (1005)
    while a task acting on the host runs: the two would change the host's record at once."""
    host = get_host(session, host_id)
    running = _running_tasks(session, [host.id]).get(host.id)
    if running:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"host {host.inner_ip_address}:{host.ssh_port}: tasks acting on it are running: "
            f"{', '.join(running)}. Let them end (or cancel them) first.",
        )
    return _submit_prepare(session, host, principal)


def _submit_prepare(session: Session, host: Host, principal: Principal) -> int:
    return submit(
        session,
        prepare_host.build(host.id, host.inner_ip_address),
        creator=principal.username,
        creator_id=principal.user_id,
        subject=TaskSubject(host_id=host.id),
        targets=[targets.host(host.id)],
    )


def _in_use(session: Session, host: Host) -> str | None:
    """Why the host cannot be forgotten, or None when nothing uses it."""
    servers = session.scalars(
        select(ObproxyServer.id).where(ObproxyServer.host_id == host.id).order_by(ObproxyServer.id)
    ).all()
    if servers:
        return f"OBProxy instances {', '.join(map(str, servers))} live on it."
    tables = referencing_tables(session, Host.__tablename__, host.id)
    return f"It is referenced by {', '.join(tables)}." if tables else None


def _running_tasks(session: Session, host_ids: Sequence[int]) -> dict[int, list[str]]:
    """Per host, the RUNNING tasks acting on it. A FAILED task does not hold its host:
    deleting what a failed install left behind is how an operator gives up on it."""
    found: dict[int, list[str]] = defaultdict(list)
    for task in running_tasks_on(session, targets.HOST, host_ids):
        found[int(task.key)].append(task.label)
    return found


def delete(session: Session, host_ids: Sequence[int]) -> list[int]:
    """Forget hosts, all or none: refused (7005, 7004) if any is unknown or in use, or while a
    task acting on it runs.

    Nothing is done on the hosts themselves: obfleet only installed what OBProxy instances
    brought, and a host with instances is refused. Returns the ids forgotten.
    """
    if not host_ids:
        raise bad_request("hostIdList must list at least one host")
    hosts = [get_host(session, host_id) for host_id in dict.fromkeys(host_ids)]
    tasks = _running_tasks(session, [host.id for host in hosts])
    for host in hosts:
        reason = _in_use(session, host)
        if reason is None and tasks.get(host.id):
            reason = (
                f"Tasks acting on it are running: {', '.join(tasks[host.id])}. Let them end "
                "(or cancel them) first."
            )
        if reason:
            raise ApiError(
                ErrorCode.HOST_IN_USE, f"{host.inner_ip_address}:{host.ssh_port}", reason
            )
    for host in hosts:
        session.delete(host)
    session.flush()
    return [host.id for host in hosts]


async def forget_connections(app: AppContext, host_ids: Sequence[int]) -> None:
    """Close the pooled SSH connections of forgotten hosts (pooled by host id, see
    host_access.connect), so a later host that reuses an id never inherits one."""
    for host_id in host_ids:
        await app.ssh.discard(str(host_id))


# --- queries ------------------------------------------------------------------------------


def _split(values: Sequence[str] | None, allowed: Sequence[str], field: str) -> list[str]:
    """`status=ONLINE,NEW` and `status=ONLINE&status=NEW` mean the same; unknown values are
    refused rather than silently matching nothing."""
    items = [v.strip() for value in values or () for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise bad_request(f"{field} '{', '.join(unknown)}' must be among {', '.join(allowed)}")
    return items


def query(
    statuses: Sequence[str] | None = None,
    keyword: str | None = None,
    included_service_types: Sequence[str] | None = None,
    excluded_service_types: Sequence[str] | None = None,
) -> Select[Any]:
    """Hosts by status, by a keyword in their name, host name or address, and by the services
    on them (only OB_PROXY exists in obfleet: asking for any other type finds nothing)."""
    stmt = host_rows()
    status_list = _split(statuses, STATUSES, "status")
    if status_list:
        stmt = stmt.where(Host.status.in_(status_list))
    if keyword:
        stmt = stmt.where(
            or_(
                Host.name.icontains(keyword, autoescape=True),
                Host.hostname.icontains(keyword, autoescape=True),
                Host.inner_ip_address.icontains(keyword, autoescape=True),
            )
        )
    included = _split(included_service_types, SERVICE_TYPES, "includedServiceType")
    if included:
        stmt = stmt.where(_with_obproxy() if OB_PROXY in included else false())
    if OB_PROXY in _split(excluded_service_types, SERVICE_TYPES, "excludedServiceType"):
        stmt = stmt.where(~_with_obproxy())
    return stmt


def _with_obproxy() -> ColumnElement[bool]:
    """Hosts running an OBProxy. Built only when a filter asks: building it cost as much as
    running an empty page."""
    return Host.id.in_(select(ObproxyServer.host_id))
