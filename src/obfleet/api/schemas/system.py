"""OCP's "other" module: the application information (a bare object, no envelope)."""

from __future__ import annotations

from obfleet.api.schema import ApiModel, OcpTime


class InfoOut(ApiModel):
    """OCP's build information; the Java fields are null, obfleet is Python."""

    artifact: str
    build_java_version: str | None = None
    build_python_version: str
    build_time: OcpTime
    build_version: str
    group: str
    name: str
    spring_boot_version: str | None = None
