"""The audit trail: one row per change asked of obfleet, whatever its outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import NO_ID_REUSE, Base, IdMixin, UTCDateTime


class AuditEvent(IdMixin, Base):
    """Who asked for which change of what, from where, and how it ended. Never a request body:
    what changed is named by the route and the object's id, so no secret can reach a row."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_time", "time"),
        Index("ix_audit_event_username_time", "username", "time"),
        Index("ix_audit_event_action_time", "action", "time"),
        NO_ID_REUSE,
    )

    time: Mapped[datetime] = mapped_column(UTCDateTime())
    # None when the caller was not (or not yet) identified: a refused login, a config server call.
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    # The operation: the route's name (`create_credential`), or a CLI command (`user add`).
    action: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    # The route template (`/api/v2/credentials/{credential_id}`) or `cli`.
    route: Mapped[str] = mapped_column(String(255))
    object_type: Mapped[str | None] = mapped_column(String(32), default=None)
    object_id: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[int] = mapped_column(Integer)
    successful: Mapped[bool] = mapped_column(default=False)
    error_code: Mapped[int | None] = mapped_column(Integer, default=None)
    trace_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # The tasks the change submitted, comma-separated (a batch may submit several).
    task_ids: Mapped[str | None] = mapped_column(String(255), default=None)
