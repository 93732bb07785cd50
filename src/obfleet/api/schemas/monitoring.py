"""Prometheus HTTP service discovery's answer (http_sd): a bare list of target groups, with
Prometheus' own field and label names (not camelCase)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TargetLabels(BaseModel):
    cluster: str = Field(description="The OBProxy cluster's name.")
    obproxy_cluster_id: str
    obproxy_id: str
    host: str = Field(description="The OBProxy's host address.")
    status: str = Field(description="The OBProxy's status (RUNNING, UNAVAILABLE, …).")


class TargetGroup(BaseModel):
    targets: list[str] = Field(description="One `host:exporterPort` (`[v6]:port` for IPv6).")
    labels: TargetLabels
