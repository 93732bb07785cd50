"""The software package store: RPMs kept in the metadb (store/package_chunks.py), recorded with
their header facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode
from obfleet.packages.rpm import MAX_EXPANDED_BYTES, RpmError, RpmHeader, read_header
from obfleet.store import package_chunks
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.packages import SoftwarePackage
from obfleet.store.refs import referencing_tables

OBPROXY = "OBPROXY_INSTALL_PACKAGE"
TYPES_BY_NAME = {
    "obproxy": OBPROXY,
    "obproxy-ce": OBPROXY,
    "oceanbase": "OB_SERVER_INSTALL_PACKAGE",
    "oceanbase-ce": "OB_SERVER_INSTALL_PACKAGE",
    "t-oceanbase-ocp-agent": "OCP_AGENT_INSTALL_PACKAGE",
    "ocp-agent": "OCP_AGENT_INSTALL_PACKAGE",
    "obagent": "OCP_AGENT_INSTALL_PACKAGE",
}
TYPES = sorted(set(TYPES_BY_NAME.values()) | {"OB_BACKUP_AGENT_INSTALL_PACKAGE"})
# What an OBProxy package must install: the home's bin/obproxy (flows/obproxy/acts.py ships the
# directory holding it).
OBPROXY_BINARY = "/bin/obproxy"


def package_type(header: RpmHeader) -> str:
    if header.is_source:
        raise ApiError(
            ErrorCode.PACKAGE_TYPE_INVALID,
            f"{header.name}-{header.version}-{header.release} is a source RPM;"
            " upload the binary RPM built from it",
        )
    kind = TYPES_BY_NAME.get(header.name)
    if kind is None:
        raise ApiError(
            ErrorCode.PACKAGE_TYPE_INVALID,
            f"'{header.name}' is none of {', '.join(sorted(TYPES_BY_NAME))}",
        )
    if kind == OBPROXY and not header.has_file(OBPROXY_BINARY):
        raise ApiError(
            ErrorCode.PACKAGE_TYPE_INVALID,
            f"'{header.name}' is named as an OBProxy package but its file list holds no"
            f" <home>{OBPROXY_BINARY} file",
        )
    return kind


def check_expanded_size(header: RpmHeader, limit: int) -> None:
    """Refuse a package whose payload would expand past `limit` bytes once decompressed."""
    files = sum(f.size for f in header.files)
    expanded = max(header.expanded_size, files)
    if expanded > limit:
        raise ApiError(
            ErrorCode.PACKAGE_PARSE_ERROR,
            f"its payload expands to {expanded} bytes, more than the limit of {limit} bytes"
            " (4 x the upload limit, at most 8 GiB)",
        )


def add(
    session: Session,
    packages_dir: Path,
    upload: Path,
    *,
    size: int,
    sha1: str,
    creator: str,
    expanded_limit: int = MAX_EXPANDED_BYTES,
) -> SoftwarePackage:
    """Record an uploaded file (already on disk in packages_dir) and give it its RPM name.
    On any refusal the upload is removed, so nothing is left behind."""
    try:
        header = read_header(upload)
        kind = package_type(header)
        check_expanded_size(header, expanded_limit)
        if (
            session.scalar(
                select(SoftwarePackage.id).where(SoftwarePackage.file_name == header.file_name)
            )
            is not None
        ):
            raise ApiError(ErrorCode.PACKAGE_EXISTS, header.file_name)
        package = SoftwarePackage(
            name=header.name,
            file_name=header.file_name,
            extension="rpm",
            size=size,
            sha1=sha1,
            type=kind,
            version=header.version,
            build_number=header.build_number,
            operating_system=header.operating_system,
            architecture=header.arch,
            creator=creator,
        )
        session.add(package)
        session.flush()
        package_chunks.store(session, package, upload)
        package_chunks.keep_local(packages_dir, package, upload)
    except RpmError as exc:
        upload.unlink(missing_ok=True)
        raise ApiError(ErrorCode.PACKAGE_PARSE_ERROR, str(exc)) from exc
    except BaseException:
        upload.unlink(missing_ok=True)
        raise
    return package


def get(session: Session, package_id: int) -> SoftwarePackage:
    package = session.get(SoftwarePackage, package_id)
    if package is None:
        raise ApiError(ErrorCode.PACKAGE_NOT_FOUND, package_id)
    return package


def by_file_name(session: Session, file_name: str, kind: str | None = None) -> SoftwarePackage:
    stmt = select(SoftwarePackage).where(SoftwarePackage.file_name == file_name)
    if kind:
        stmt = stmt.where(SoftwarePackage.type == kind)
    package = session.scalar(stmt)
    if package is None:
        raise ApiError(ErrorCode.PACKAGE_NOT_FOUND, file_name)
    return package


def path_of(packages_dir: Path, package: SoftwarePackage) -> Path:
    """Where a package uploaded before packages went to the metadb was kept."""
    return packages_dir / package.file_name


def installations(session: Session, package: SoftwarePackage) -> list[ObproxyServer]:
    """The obproxies recorded as installed from the package."""
    stmt = select(ObproxyServer).where(ObproxyServer.package_id == package.id)
    return list(session.scalars(stmt.order_by(ObproxyServer.id)))


def in_use_by(session: Session, package: SoftwarePackage) -> list[str]:
    return referencing_tables(session, SoftwarePackage.__tablename__, package.id)


def delete(session: Session, packages_dir: Path, package_id: int) -> None:
    package = get(session, package_id)
    users = in_use_by(session, package)
    if users:
        raise ApiError(ErrorCode.PACKAGE_IN_USE, f"{package.file_name} ({', '.join(users)})")
    session.delete(package)
    session.flush()
    package_chunks.forget_local(packages_dir, package)
    path_of(packages_dir, package).unlink(missing_ok=True)


def query(
    keyword: str | None,
    types: list[str] | None,
    versions: list[str] | None,
    systems: list[str] | None,
    architectures: list[str] | None,
) -> Select[Any]:
    stmt = select(SoftwarePackage)
    if keyword:
        stmt = stmt.where(SoftwarePackage.file_name.contains(keyword, autoescape=True))
    for column, values in (
        (SoftwarePackage.type, types),
        (SoftwarePackage.version, versions),
        (SoftwarePackage.operating_system, systems),
        (SoftwarePackage.architecture, architectures),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    return stmt


def of_version(session: Session, version: str, build: str | None) -> SoftwarePackage | None:
    """An uploaded OBProxy package of that version and build (its major build number), if any."""
    found = session.scalars(
        select(SoftwarePackage).where(
            SoftwarePackage.type == OBPROXY, SoftwarePackage.version == version
        )
    ).all()
    for package in found:
        if build is None or package.build_number.split(".")[0] == build.split(".")[0]:
            return package
    return None
