"""OCP's host module: Host, with the services that run on it."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import Field
from sqlalchemy import Row
from sqlalchemy.orm import Session

from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.hosts.ssh import fingerprint
from obfleet.records.host_views import SERVICES_OF, host_rows, services_of
from obfleet.services import hosts as service


class ServiceSummaryOut(ApiModel):
    name: str
    version: str | None
    type: str
    software_package_id: int | None


# Where every host is: obfleet has one IDC, host type and region (services.hosts).
_PLACE = {
    "idcId": service.DEFAULT_IDC.id,
    "typeId": service.DEFAULT_TYPE.id,
    "regionId": service.DEFAULT_REGION.id,
    "regionName": service.DEFAULT_REGION.name,
}
_PLACE_FIELDS = ("idc_id", "type_id", "region_id", "region_name")


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
    def page(cls, session: Session, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
        """A page of hosts' view rows, the OBProxies on them read in one query."""
        services = services_of(session, [_ID(r) for r in rows])
        return [cls.wire(r, services.get(_ID(r), ())) for r in rows]

    @classmethod
    def wire(cls, host: Row[Any], services: Iterable[Sequence[Any]]) -> dict[str, Any]:
        wire = HOST_WIRE.dump(host)
        wire["services"] = [SERVICE_WIRE.dump(s) for s in services]
        wire["hostKeyFingerprint"] = _fingerprint(_HOST_KEY(host))
        return wire | _PLACE


HOST_WIRE = WireRow(
    HostOut,
    host_rows().selected_columns.keys(),
    skip={"services", "host_key_fingerprint", *_PLACE_FIELDS},
)
SERVICE_WIRE = WireRow(ServiceSummaryOut, SERVICES_OF.selected_columns.keys())
_ID = HOST_WIRE.columns("id")
_HOST_KEY = HOST_WIRE.columns("host_key")


@functools.lru_cache(maxsize=4096)
def _fingerprint(host_key: str | None) -> str | None:
    """Kept per key: parsing a key to take its fingerprint cost more than the rest of its
    host's view, on every read of every host page."""
    return fingerprint(host_key) if host_key else None
