"""Root-service lists registered through the config server (`/services`).

Observers started with `obconfig_url` post their root servers here, and OBD reserves a name
with `ObRootServiceRegister`. They live apart from obfleet's own `ob_cluster` records so that an
observer registering never rewrites a record an operator imported: the config server serves a
registration in place of the record with the same (name, cluster id), and forgets it on DELETE.

Also here: the config-server generation, the counter every commit that changes one of the
tables the config server answers from moves (obfleet.store.generation), and that replicas check
before reusing a cached answer (obfleet.configserver.cache).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store import generation
from obfleet.store.base import NO_ID_REUSE, Base, IdMixin, TimestampMixin


class RootServiceRegistration(IdMixin, TimestampMixin, Base):
    __tablename__ = "configserver_registration"
    # ob-configserver upserts on (name, ob_cluster_id): a primary and its standbys share a name.
    __table_args__ = (UniqueConstraint("name", "ob_cluster_id"), NO_ID_REUSE)

    name: Mapped[str] = mapped_column(String(128))
    ob_cluster_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    # [{"address": "ip:rpcPort", "role": "LEADER"|"FOLLOWER", "sql_port": 2881}], as posted
    rs_list: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    readonly_rs_list: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The observer's own clock, in microseconds: ob-configserver prefers the newest one.
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ConfigServerGeneration(Base):
    """One row (id 1, written by migration 0005) counting the committed changes to what the
    config server answers; every replica keeps its answers until the value moves."""

    __tablename__ = "configserver_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


# Every table the config server's answers are computed from. A table it starts to read must
# be added here (tests/configserver/test_cache.py checks the reads of every action against it).
CONFIG_SERVER_TABLES = (
    "ob_cluster",
    "configserver_registration",
    "obproxy_cluster",
    "obproxy_link",
)
GENERATION = generation.watch(cast(Table, ConfigServerGeneration.__table__), CONFIG_SERVER_TABLES)
