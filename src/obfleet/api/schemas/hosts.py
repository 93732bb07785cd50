"""OCP's host module: Host, with the services that run on it."""

from __future__ import annotations

from pydantic import Field

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.hosts.ssh import fingerprint
from obfleet.services import hosts as service
from obfleet.store.models.hosts import Host


class ServiceSummaryOut(ApiModel):
    name: str
    version: str | None
    type: str
    software_package_id: int | None


class HostOut(ApiModel):
    """OCP's host object. No agent runs on obfleet's hosts, so the agent fields are null."""

    id: int
    name: str
    alias: str | None
    description: str | None
    operating_system: str | None
    operating_system_release: str | None
    architecture: str | None
    serial_number: str | None
    inner_ip_address: str
    ssh_port: int
    kind: str
    publish_ports: str | None = None
    services: list[ServiceSummaryOut]
    status: str
    idc_id: int
    idc_name: str
    idc_description: str | None = None
    type_id: int
    type_name: str
    type_description: str | None = None
    region_id: int
    region_name: str
    region_description: str | None = None
    host_agent_id: int | None = None
    host_agent_version: str | None = None
    host_agent_status: str | None = None
    credential_id: int = Field(description="Extension: the HOST credential obfleet logs in with.")
    host_key_fingerprint: str | None = Field(
        description="Extension: SHA256 fingerprint of the host key pinned at first contact."
    )
    create_time: OcpTime
    update_time: OcpTime

    @classmethod
    def of(cls, host: Host, services: list[service.ServiceSummary]) -> HostOut:
        return cls(
            id=host.id,
            name=host.name,
            alias=host.alias,
            description=host.description,
            operating_system=host.operating_system,
            operating_system_release=host.operating_system_release,
            architecture=host.architecture,
            serial_number=host.serial_number,
            inner_ip_address=host.inner_ip_address,
            ssh_port=host.ssh_port,
            kind=host.kind,
            services=[ServiceSummaryOut.model_validate(s) for s in services],
            status=host.status,
            idc_id=service.DEFAULT_IDC.id,
            idc_name=host.idc_name,
            type_id=service.DEFAULT_TYPE.id,
            type_name=host.type_name,
            region_id=service.DEFAULT_REGION.id,
            region_name=service.DEFAULT_REGION.name,
            credential_id=host.credential_id,
            host_key_fingerprint=fingerprint(host.host_key) if host.host_key else None,
            create_time=host.create_time,
            update_time=host.update_time,
        )
