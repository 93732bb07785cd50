"""Upgrading OBProxies to another uploaded package; rolling back runs the old one again.

`POST .../clusters/{id}/obproxies/{obproxyIds}/upgrade`, body `shortRpmName` (V4.2:
name-version-buildNumber, e.g. `obproxy-ce-4.2.3.0-3`; the full RPM file name is accepted too),
or no body (V3.1): the newest uploaded OBProxy package, by version then build number.

Refused with nothing stored, before any host is touched:

* an unknown package (7514), or a short name several packages share that the hosts'
  architecture does not settle (400: give the file name);
* an obproxy that already runs that version (400): the new version is installed beside the old
  one, in <the cluster's install path>/obproxy-<version>, so the same version would be its own
  install path;
* an obproxy that is not RUNNING/UNAVAILABLE (21003), or on a host that is not ONLINE (7004);
* a new install path that another recorded OBProxy on the host lives in (409; obfleet keeps one
  OBProxy per install path and host, as install does);
* cluster parameters the new version does not have or accept (400), checked like batchAdd's.

In the request's transaction the rows go UPGRADING/OPERATING, so no other operation starts on
them. The task, "Upgrade obproxy" (OCP documents no name: its sample is a copy of delete's),
upgrades one obproxy after the other (flows/obproxy/upgrade.py), so the cluster keeps serving.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.flow import TaskSubject
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.flows.obproxy import upgrade as upgrade_flow
from obfleet.obproxy import catalog, layout
from obfleet.records import obproxy as records
from obfleet.records import packages
from obfleet.services import obproxy_instances as instances
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyServer, ObproxyStatus
from obfleet.store.models.packages import SoftwarePackage


def short_rpm_name(package: SoftwarePackage) -> str:
    """V4.2's shortRpmName: name-version-buildNumber (`obproxy-ce-4.2.3.0-3`)."""
    return f"{package.name}-{package.version}-{package.build_number}"


def shown_version(package: SoftwarePackage) -> str:
    """How an obproxy's version is shown (ObproxyServer.version): version-buildNumber."""
    return f"{package.version}-{package.build_number}"


def version_key(package: SoftwarePackage) -> tuple[tuple[int, ...], int, str]:
    """Newer packages sort higher: version, then a numeric build number."""
    try:
        version = catalog.parse_version(package.version)
    except ValueError:
        version = ()
    build = package.build_number.split(".")[0]
    return version, int(build) if build.isdigit() else -1, package.build_number


def _architectures(session: Session, rows: Sequence[ObproxyServer]) -> set[str]:
    hosts = session.scalars(select(Host).where(Host.id.in_({r.host_id for r in rows}))).all()
    return {h.architecture for h in hosts if h.architecture}


def target_package(
    session: Session, name: str | None, rows: Sequence[ObproxyServer]
) -> SoftwarePackage:
    """The package `name` designates (a short name or a file name), or the newest one."""
    uploaded = session.scalars(
        select(SoftwarePackage).where(SoftwarePackage.type == packages.OBPROXY)
    ).all()
    wanted = (name or "").strip()
    if wanted:
        matches = [
            p
            for p in uploaded
            if wanted in (p.file_name, p.file_name.removesuffix(".rpm"), short_rpm_name(p))
        ]
        if not matches:
            raise ApiError(ErrorCode.PACKAGE_NOT_FOUND, wanted)
    else:
        if not uploaded:
            raise ApiError(
                ErrorCode.PACKAGE_NOT_FOUND,
                message="No OBProxy package (OBPROXY_INSTALL_PACKAGE) is uploaded: upload the "
                "one to upgrade to, then ask again (or name it with shortRpmName).",
            )
        newest = max(version_key(p) for p in uploaded)
        matches = [p for p in uploaded if version_key(p) == newest]
    if len(matches) > 1:
        # el7/el8, x86_64/aarch64 builds of one version share a short name: the hosts decide.
        archs = _architectures(session, rows)
        fitting = [p for p in matches if p.architecture in archs]
        if len(fitting) != 1:
            files = ", ".join(sorted(p.file_name for p in matches))
            raise bad_request(
                f"{wanted or 'the newest version'} matches several packages ({files}): "
                "give shortRpmName as the full file name of the one to install"
            )
        matches = fitting
    return matches[0]


def _check_rows(
    session: Session,
    rows: Sequence[ObproxyServer],
    package: SoftwarePackage,
    install_path: str,
) -> None:
    home = layout.home(install_path, package.version)
    version = shown_version(package)
    by_host: dict[int, ObproxyServer] = {}
    for row in rows:
        where = f"obproxy {row.id} on {row.ip}:{row.sql_port}"
        if row.install_path is None:
            raise bad_request(f"{where} has no recorded install path; it cannot be upgraded")
        if row.version == version or row.install_path == home:
            raise bad_request(
                f"{where} already runs {row.version or package.version} from {row.install_path}: "
                f"there is nothing to upgrade to {package.file_name}"
            )
        instances.check_host_online(session, row.host_id, doing="upgraded")
        other = by_host.get(row.host_id)
        if other is not None:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"obproxies {other.id} and {row.id} both run on {row.ip} and would both be "
                f"installed in {home}; obfleet keeps one OBProxy per install path and host: "
                "upgrade them in two requests to different versions, or delete one",
            )
        by_host[row.host_id] = row
        for neighbour in session.scalars(
            select(ObproxyServer).where(
                ObproxyServer.host_id == row.host_id, ObproxyServer.id != row.id
            )
        ):
            if neighbour.install_path == home:
                raise ApiError(
                    ErrorCode.CONFLICT,
                    f"cannot upgrade {where}: {home} is the install path of obproxy "
                    f"{neighbour.id} on the same host",
                )
            if neighbour.status == ObproxyStatus.UPGRADING and (
                records.get(session, neighbour.cluster_id).install_path == install_path
            ):
                # Its new install path is recorded only once it runs there: one upgrade per
                # host and cluster install path at a time, or two could install into the same
                # path.
                raise ApiError(
                    ErrorCode.CONFLICT,
                    f"cannot upgrade {where} now: obproxy {neighbour.id} on the same host is "
                    "being upgraded; wait until its task ends",
                )


def upgrade(
    session: Session,
    cluster_id: int,
    obproxy_ids: list[int],
    short_rpm_name: str | None,
    principal: Principal,
) -> int:
    """Check, mark the rows UPGRADING, submit "Upgrade obproxy"; returns the task id."""
    cluster = records.get(session, cluster_id)
    rows = records.obproxies_of(session, cluster_id, obproxy_ids)
    package = target_package(session, short_rpm_name, rows)
    _check_rows(session, rows, package, cluster.install_path)
    instances.check_parameters(cluster, package)
    # Built before the marking: it keeps their statuses.
    flow = upgrade_flow.build(cluster, rows, package, shown_version(package))
    return submit_on(
        session,
        flow,
        cluster_id,
        rows,
        ObproxyStatus.UPGRADING,
        principal,
        subject=TaskSubject(host_id=rows[0].host_id if len(rows) == 1 else None),
    )
