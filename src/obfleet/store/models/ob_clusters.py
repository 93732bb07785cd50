"""Records of existing OceanBase clusters: obfleet links OBProxies to them, never deploys them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import Base, BigId, IdMixin, TimestampMixin


class ObCluster(IdMixin, TimestampMixin, Base):
    __tablename__ = "ob_cluster"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    ob_cluster_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(16), default="PRIMARY")
    ob_version: Mapped[str | None] = mapped_column(String(64), default=None)
    # obfleet never connects to the cluster: its state is not available to it (OCP's enum value
    # for a cluster the platform cannot get the state of).
    status: Mapped[str] = mapped_column(String(16), default="UNAVAILABLE")
    # [{"address": "ip:rpcPort", "role": "LEADER"|"FOLLOWER", "sqlPort": 2881}]
    root_servers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    proxyro_credential_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("credential.id"), default=None
    )
    creator: Mapped[str | None] = mapped_column(String(64), default=None)
