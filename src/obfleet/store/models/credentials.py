"""OCP's password box: connection credentials for hosts, OceanBase clusters and OBProxies."""

from __future__ import annotations

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import Base, IdMixin, TimestampMixin


class Credential(IdMixin, TimestampMixin, Base):
    __tablename__ = "credential"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    # HOST (SSH), OB_CLUSTER (e.g. proxyro), OBPROXY (root@proxysys)
    target_type: Mapped[str] = mapped_column(String(16))
    # PASSWORD or PRIVATE_KEY (only hosts use keys)
    auth_type: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    passphrase_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(String(256), default=None)
    # A secret obfleet generated that nobody has seen yet: it can be revealed once.
    revealable: Mapped[bool] = mapped_column(Boolean, default=False)
