"""OCP's cluster module: ObCluster (the OceanBase clusters obfleet knows)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.records import ob_clusters as service
from obfleet.store.models.ob_clusters import ObCluster


class RootServerOut(ApiModel):
    address: str
    role: str
    sql_port: int = Field(alias="sql_port")  # so OCP's cluster list sample spells it

    @classmethod
    def of(cls, server: service.RootServer) -> RootServerOut:
        return cls(address=server.address, role=server.role, sql_port=server.sql_port)


class ObClusterOut(ApiModel):
    id: int
    name: str
    ob_cluster_id: int
    ob_version: str | None
    status: str
    type: str
    root_servers: list[RootServerOut]
    proxyro_credential_id: int | None
    creator: str | None
    region_count: int = 0
    server_count: int = 0
    tenant_count: int = 0
    zones: list[dict[str, Any]] = Field(default_factory=list)
    standby_clusters: list[dict[str, Any]] = Field(default_factory=list)
    alarm_summaries: list[dict[str, Any]] = Field(
        default_factory=list, description="OCP's alarm summaries: obfleet raises none, always []."
    )
    create_time: OcpTime
    update_time: OcpTime

    @classmethod
    def of(cls, cluster: ObCluster) -> ObClusterOut:
        servers = [RootServerOut.of(s) for s in service.root_servers(cluster)]
        return cls(
            id=cluster.id,
            name=cluster.name,
            ob_cluster_id=cluster.ob_cluster_id,
            ob_version=cluster.ob_version,
            status=cluster.status,
            type=cluster.type,
            root_servers=servers,
            proxyro_credential_id=cluster.proxyro_credential_id,
            creator=cluster.creator,
            server_count=len(servers),
            create_time=cluster.create_time,
            update_time=cluster.update_time,
        )
