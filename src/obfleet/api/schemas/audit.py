"""The audit trail as the API shows it (extension)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Row

from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.records.audit import event_rows


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
    def wire(cls, event: Row[Any]) -> dict[str, Any]:
        wire = EVENT_WIRE.dump(event)
        wire["taskIds"] = [int(t) for t in (_TASK_IDS(event) or "").split(",") if t]
        return wire


EVENT_WIRE = WireRow(AuditEventOut, event_rows().selected_columns.keys(), skip={"task_ids"})
_TASK_IDS = EVENT_WIRE.columns("task_ids")
