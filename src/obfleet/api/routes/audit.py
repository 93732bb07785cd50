"""Extension: the audit trail, read by ADMIN and AUDITOR (api/audit.py writes it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from obfleet.api.auth import require
from obfleet.api.deps import SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.paging import Page, PageRequest, page_request, paginate
from obfleet.api.schemas.audit import AuditEventOut
from obfleet.errors import bad_request
from obfleet.records import audit
from obfleet.records.audit import EVENT
from obfleet.security.roles import Resource

router = APIRouter(prefix="/api/v2/audit-events", tags=["audit (extension)"])
READ = Depends(require(Resource.AUDIT))
SORTABLE = {"id": EVENT.id, "time": EVENT.time}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise bad_request(f"{name} needs an offset, e.g. 2021-09-03T15:05:01.101+08:00")
    return value


@router.get(
    "",
    dependencies=[READ],
    response_model=Envelope[Page[AuditEventOut]],
    summary="List audit events (newest last unless sorted)",
)
def list_audit_events(
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    username: str | None = Query(None, description="Who asked."),
    action: str | None = Query(None, description="The operation, e.g. create_credential."),
    object_type: str | None = Query(None, alias="objectType", description="e.g. HOST."),
    object_id: str | None = Query(None, alias="objectId"),
    successful: bool | None = Query(None),
    start_time: datetime | None = Query(None, alias="startTime", description="From (inclusive)."),
    end_time: datetime | None = Query(None, alias="endTime", description="Until (exclusive)."),
) -> EnvelopeResponse:
    """The audit trail: every change asked of obfleet (through the API or the server's CLI),
    refused ones too, with who asked, from where, the object, the outcome and the tasks it
    started. Request bodies and secrets are never recorded."""
    where = audit.AuditFilter(
        username=username,
        action=action,
        object_type=object_type,
        object_id=object_id,
        successful=successful,
        since=_aware(start_time, "startTime"),
        until=_aware(end_time, "endTime"),
    )
    return ok(paginate(session, audit.query(where), page, SORTABLE, EVENT.id, AuditEventOut.wire))
