"""OBProxy clusters, the OceanBase clusters they connect to, and their OBProxy instances."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from obfleet.store.base import NO_ID_REUSE, Base, BigId, IdMixin, TimestampMixin, UTCDateTime


class ObproxyStatus(StrEnum):
    """An obproxy's status: RUNNING and UNAVAILABLE are settled (the health checks move it
    between them); the others are an operation in progress, held by the task doing it."""

    CREATING = "CREATING"
    RUNNING = "RUNNING"
    UNAVAILABLE = "UNAVAILABLE"
    RESTARTING = "RESTARTING"
    REFRESHING = "REFRESHING"
    UPGRADING = "UPGRADING"
    TAKINGOVER = "TAKINGOVER"
    DELETING = "DELETING"


class ObproxyOrigin(StrEnum):
    """How an obproxy came to be recorded."""

    INSTALL = "INSTALL"  # obfleet installed it (Install obproxy, Upgrade obproxy's new install)
    TAKE_OVER = "TAKE_OVER"  # it ran before obfleet knew it (Take over obproxy)


class ObproxyCluster(IdMixin, TimestampMixin, Base):
    __tablename__ = "obproxy_cluster"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    address: Mapped[str | None] = mapped_column(String(255), default=None)
    port: Mapped[int | None] = mapped_column(Integer, default=None)
    work_mode: Mapped[str] = mapped_column(String(16), default="CONFIG_URL")
    parameter_version: Mapped[int] = mapped_column(Integer, default=1)
    # [{"name": ..., "value": ...}] as given (validated, normalised); secrets stay in credentials
    startup_parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Where its obproxies live: <install_path>/obproxy-<version> (the RPM's own layout under
    # /home/admin by default), and the user they run as (root for clusters recorded before
    # obfleet knew run-as users: they were started as root).
    install_path: Mapped[str] = mapped_column(String(255), default="/home/admin")
    run_user: Mapped[str] = mapped_column(String(32), default="admin")
    # root@proxysys: given at create or generated, kept in the password box.
    proxysys_credential_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("credential.id"), default=None
    )
    creator_id: Mapped[int | None] = mapped_column(BigId, default=None)
    creator_name: Mapped[str | None] = mapped_column(String(64), default=None)

    links: Mapped[list[ObproxyLink]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ObproxyLink.id"
    )
    obproxies: Mapped[list[ObproxyServer]] = relationship(
        lazy="selectin", order_by="ObproxyServer.id", viewonly=True
    )


class ObproxyLink(IdMixin, Base):
    """An OceanBase cluster an OBProxy cluster can connect to (OCP's ObLink)."""

    __tablename__ = "obproxy_link"
    __table_args__ = (UniqueConstraint("obproxy_cluster_id", "ob_cluster_id"), NO_ID_REUSE)

    obproxy_cluster_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("obproxy_cluster.id", ondelete="CASCADE")
    )
    ob_cluster_id: Mapped[int] = mapped_column(BigId, ForeignKey("ob_cluster.id"))
    username: Mapped[str] = mapped_column(String(64), default="proxyro")


class ObproxyServer(IdMixin, TimestampMixin, Base):
    """One OBProxy process on a host (OCP's ObproxyServer)."""

    __tablename__ = "obproxy_server"
    __table_args__ = (UniqueConstraint("host_id", "sql_port"), NO_ID_REUSE)

    cluster_id: Mapped[int] = mapped_column(BigId, ForeignKey("obproxy_cluster.id"))
    host_id: Mapped[int] = mapped_column(BigId, ForeignKey("host.id"))
    package_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("software_package.id"), default=None
    )
    ip: Mapped[str] = mapped_column(String(64))
    sql_port: Mapped[int] = mapped_column(Integer)
    exporter_port: Mapped[int] = mapped_column(Integer)
    version: Mapped[str | None] = mapped_column(String(64), default=None)
    install_path: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(16), default=ObproxyStatus.CREATING)
    # The task whose operation holds the obproxy (the one that set its unsettled status); NULL
    # when settled. Not a foreign key: tasks are never deleted, and the id is only compared.
    task_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    origin: Mapped[str] = mapped_column(String(16), default=ObproxyOrigin.INSTALL)
    # Its install found the install path empty and the ports free before it shipped anything,
    # so whatever lies in the path is this obproxy's own (offline may remove it even when the
    # install never finished).
    install_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    operate_status: Mapped[str] = mapped_column(String(16), default="OPERATING")
    parameter_version: Mapped[int] = mapped_column(Integer, default=0)
    architecture: Mapped[str | None] = mapped_column(String(32), default=None)
    last_active_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
