"""Writing and reading the audit trail (store/models/audit.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from obfleet.store.base import as_stored
from obfleet.store.models.audit import AuditEvent
from obfleet.timefmt import utcnow


@dataclass(frozen=True)
class Change:
    """One change asked of obfleet, as the audit trail keeps it."""

    action: str
    method: str
    route: str
    status: int
    username: str | None = None
    client_address: str = ""
    object_type: str | None = None
    object_id: str | None = None
    error_code: int | None = None
    trace_id: str | None = None
    task_ids: Sequence[int] = field(default_factory=tuple)

    @property
    def successful(self) -> bool:
        return 200 <= self.status < 300


def record(session: Session, change: Change) -> AuditEvent:
    event = AuditEvent(
        time=utcnow(),
        username=change.username,
        client_address=change.client_address[:64],
        action=change.action[:64],
        method=change.method,
        route=change.route[:255],
        object_type=change.object_type,
        object_id=change.object_id[:255] if change.object_id else None,
        status=change.status,
        successful=change.successful,
        error_code=change.error_code,
        trace_id=change.trace_id,
        task_ids=",".join(str(t) for t in change.task_ids)[:255] or None,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AuditFilter:
    username: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    successful: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


EVENT = AuditEvent.__table__.c
# The events' columns as the trail shows them: rows, not ORM objects (a page of 2,000 events
# as objects made into models cost 33 ms in-process, 16 us an event; bench/ISSUE18.md).
EVENT_COLUMNS = tuple(as_stored(c) if c.key == "time" else c for c in EVENT)


def event_rows() -> Select[Any]:
    """The events' columns as the trail shows them, to filter, order and page."""
    return select(*EVENT_COLUMNS)


def query(where: AuditFilter) -> Select[Any]:
    """The events `where` selects, as rows of event_rows()."""
    stmt = event_rows()
    for column, value in (
        (AuditEvent.username, where.username),
        (AuditEvent.action, where.action),
        (AuditEvent.object_type, where.object_type),
        (AuditEvent.object_id, where.object_id),
        (AuditEvent.successful, where.successful),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if where.since is not None:
        stmt = stmt.where(AuditEvent.time >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEvent.time < where.until)
    return stmt
