"""Uploaded software packages (RPMs), stored as files in the data dir."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import Base, IdMixin, TimestampMixin


class SoftwarePackage(IdMixin, TimestampMixin, Base):
    __tablename__ = "software_package"

    name: Mapped[str] = mapped_column(String(128))
    file_name: Mapped[str] = mapped_column(String(255), unique=True)
    extension: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    sha1: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(48))
    version: Mapped[str] = mapped_column(String(64))
    build_number: Mapped[str] = mapped_column(String(64))
    operating_system: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(32))
    creator: Mapped[str | None] = mapped_column(String(64), default=None)
