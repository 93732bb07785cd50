"""OCP's software package module: SoftwarePackage."""

from __future__ import annotations

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.store.models.packages import SoftwarePackage


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
    create_time: OcpTime

    @classmethod
    def of(cls, package: SoftwarePackage, base_url: str, deletable: bool = True) -> PackageOut:
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
            create_time=package.create_time,
        )
