"""What replicas share through the metadb beyond the domain rows: facts about the installation
(the secret key's verifier) and the bytes of uploaded packages."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import Base, BigId

# A chunk is at most 1 MiB (store/package_chunks.py): MySQL's BLOB holds 64 KiB, MEDIUMBLOB 16 MiB.
ChunkBytes = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql")


class MetadbSetting(Base):
    """One named fact every replica must agree on, written by the first to start."""

    __tablename__ = "metadb_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PackageChunk(Base):
    """A package's bytes, in order: the metadb is the one thing every replica sees."""

    __tablename__ = "software_package_chunk"

    package_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("software_package.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(ChunkBytes)
