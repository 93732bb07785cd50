"""The declarative base and the portable column types every model uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from obfleet.timefmt import utcnow

# Named constraints keep Alembic migrations identical on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# OCP ids are Longs; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable to SQLite, MySQL and PostgreSQL), returns aware UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# SQLite otherwise hands a deleted row's id (the highest) to the next row, and a task that
# names a deleted host or cluster by id would, retried, act on the new one. PostgreSQL and
# MySQL-compatible servers never reuse an id; SQLite needs AUTOINCREMENT for that.
NO_ID_REUSE = {"sqlite_autoincrement": True}


class IdMixin:
    """A Long id that is never handed out twice. A model with `__table_args__` of its own
    ends them with NO_ID_REUSE."""

    __table_args__: Any = NO_ID_REUSE

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    create_time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
