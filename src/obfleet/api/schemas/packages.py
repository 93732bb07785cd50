"""OCP's software package module: SoftwarePackage."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.packages import SoftwarePackage


class InstallationOut(ApiModel):
    """Where a package is installed: one obproxy (obfleet's item; OCP documents none)."""

    obproxy_cluster_id: int
    obproxy_id: int
    host_id: int
    ip: str
    sql_port: int
    install_path: str | None

    @classmethod
    def of(cls, server: ObproxyServer) -> InstallationOut:
        return cls(
            obproxy_cluster_id=server.cluster_id,
            obproxy_id=server.id,
            host_id=server.host_id,
            ip=server.ip,
            sql_port=server.sql_port,
            install_path=server.install_path,
        )


class PackageOut(ApiModel):
    id: int
    name: str
    file_name: str
    extension: str
    size: int
    sha1: str
    download_url: str
    type: str
    version: str
    build_number: str
    operating_system: str
    architecture: str
    deletable: bool
    installation_data_list: list[InstallationOut] = Field(
        description="The obproxies installed from the package (OCP's sample shows an empty "
        "list and documents no item: the items are obfleet's)."
    )
    create_time: OcpTime

    @classmethod
    def of(
        cls,
        package: SoftwarePackage,
        base_url: str,
        deletable: bool = True,
        installed: Sequence[ObproxyServer] = (),
    ) -> PackageOut:
        return PackageOut(
            id=package.id,
            name=package.name,
            file_name=package.file_name,
            extension=package.extension,
            size=package.size,
            sha1=package.sha1,
            download_url=f"{base_url}/api/v2/files/sys-package/{package.file_name}",
            type=package.type,
            version=package.version,
            build_number=package.build_number,
            operating_system=package.operating_system,
            architecture=package.architecture,
            deletable=deletable,
            installation_data_list=[InstallationOut.of(server) for server in installed],
            create_time=package.create_time,
        )
