"""Hosts obfleet deploys OBProxy onto, reached over SSH with a credential from the password box."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import NO_ID_REUSE, Base, BigId, IdMixin, TimestampMixin


class HostStatus(StrEnum):
    """NEW until "Prepare host" reaches it; ONLINE once it did (key pinned, facts read);
    OFFLINE when it could not. AVAILABLE and DELETING are OCP's, accepted as filters."""

    NEW = "NEW"
    AVAILABLE = "AVAILABLE"
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    DELETING = "DELETING"


class Host(IdMixin, TimestampMixin, Base):
    __tablename__ = "host"
    __table_args__ = (UniqueConstraint("inner_ip_address", "ssh_port"), NO_ID_REUSE)

    name: Mapped[str] = mapped_column(String(128))
    inner_ip_address: Mapped[str] = mapped_column(String(64))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    credential_id: Mapped[int] = mapped_column(BigId, ForeignKey("credential.id"))
    kind: Mapped[str] = mapped_column(String(32), default="DEDICATED_PHYSICAL_MACHINE")
    status: Mapped[str] = mapped_column(String(16), default=HostStatus.NEW)
    alias: Mapped[str | None] = mapped_column(String(128), default=None)
    description: Mapped[str | None] = mapped_column(String(256), default=None)
    serial_number: Mapped[str | None] = mapped_column(String(64), default=None)
    idc_name: Mapped[str] = mapped_column(String(64), default="default")
    type_name: Mapped[str] = mapped_column(String(64), default="default")
    hostname: Mapped[str | None] = mapped_column(String(255), default=None)
    operating_system: Mapped[str | None] = mapped_column(String(64), default=None)
    operating_system_release: Mapped[str | None] = mapped_column(String(64), default=None)
    architecture: Mapped[str | None] = mapped_column(String(32), default=None)
    # The SSH host key pinned at first contact (OpenSSH public key line); a change is refused.
    host_key: Mapped[str | None] = mapped_column(Text, default=None)
