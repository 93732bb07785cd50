"""The audit trail as the API shows it (extension)."""

from __future__ import annotations

from pydantic import Field

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.store.models.audit import AuditEvent


class AuditEventOut(ApiModel):
    id: int
    time: OcpTime
    username: str | None = Field(description="Who asked; null when the caller was not identified.")
    client_address: str
    action: str = Field(description="The operation: the route's name, or the CLI command.")
    method: str
    route: str = Field(description="The route template, or `cli`.")
    object_type: str | None = Field(description="CREDENTIAL, HOST, CLUSTER, OBPROXY, PACKAGE, …")
    object_id: str | None
    status: int
    successful: bool
    error_code: int | None
    trace_id: str | None
    task_ids: list[int] = Field(description="The tasks the change submitted.")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            time=event.time,
            username=event.username,
            client_address=event.client_address,
            action=event.action,
            method=event.method,
            route=event.route,
            object_type=event.object_type,
            object_id=event.object_id,
            status=event.status,
            successful=event.successful,
            error_code=event.error_code,
            trace_id=event.trace_id,
            task_ids=[int(t) for t in (event.task_ids or "").split(",") if t],
        )
