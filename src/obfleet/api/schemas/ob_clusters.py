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
    status: str = Field(
        description="UNAVAILABLE: obfleet records the cluster and never connects to it, so its "
        "state is not available to obfleet (OCP's value for a cluster it cannot get the state of)."
    )
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


UNKNOWN_TO_OBFLEET = "null: obfleet records a cluster's root servers only and never connects to it"


class ObServerOut(ApiModel):
    """OCP's OBServer, from what obfleet knows of it: a recorded root server of the cluster.
    What obfleet cannot know (the server's id, host, zone, times) is null, and its status is
    UNAVAILABLE, as the cluster's."""

    id: int | None = Field(description=UNKNOWN_TO_OBFLEET)
    cluster_id: int
    host_id: int | None = Field(description=UNKNOWN_TO_OBFLEET)
    ip: str
    port: int = Field(description="The RPC port, from the recorded root server's address.")
    sql_port: int
    version: str | None = Field(description="The cluster's obVersion, as recorded at import.")
    # The page's table spells withRootServer, its sample withRootserver: the sample's spelling.
    with_rootserver: bool = Field(description="Always true: obfleet records root servers only.")
    status: str
    inner_status: str | None = Field(description=UNKNOWN_TO_OBFLEET)
    zone_name: str | None = Field(description=UNKNOWN_TO_OBFLEET)
    start_time: OcpTime | None = Field(description=UNKNOWN_TO_OBFLEET)
    stop_time: OcpTime | None = Field(description=UNKNOWN_TO_OBFLEET)
    update_time: OcpTime = Field(description="When the cluster's record last changed.")

    @classmethod
    def of(cls, cluster: ObCluster, server: service.RootServer) -> ObServerOut:
        return cls(
            id=None,
            cluster_id=cluster.id,
            host_id=None,
            ip=server.ip,
            port=server.rpc_port,
            sql_port=server.sql_port,
            version=cluster.ob_version,
            with_rootserver=True,
            status=cluster.status,
            inner_status=None,
            zone_name=None,
            start_time=None,
            stop_time=None,
            update_time=cluster.update_time,
        )
