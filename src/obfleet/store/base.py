"""The declarative base and the portable column types every model uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    TypeDecorator,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import NullType

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


def as_stored(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A UTCDateTime column selected as the driver hands it over, under its own name: SQLite's
    text ('YYYY-MM-DD HH:MM:SS.ffffff'), a naive datetime from PostgreSQL's and MySQL's
    drivers, both UTC; `timefmt.iso` takes either. For rows that only go out as OCP times: on
    SQLite, parsing each value and making it aware cost 1 us a value, more than the rest of
    reading a large page's rows."""
    return type_coerce(column, NullType()).label(column.key)


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
