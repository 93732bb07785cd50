"""Extension: the service's own Prometheus metrics, and Prometheus HTTP service discovery of
every OBProxy's exporter.

Both are behind a login with OBPROXY:READ, not open: the metrics and the targets name the
fleet's hosts, ports and clusters, which only the fleet's readers may see, and Prometheus
sends Basic credentials on a scrape (`basic_auth` in `scrape_config` and in `http_sd_config`),
so a monitoring user with OBPROXY_VIEWER costs nothing to set up. A recent login is checked
from a cache, so a scrape costs no password hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.schemas.monitoring import TargetGroup
from obfleet.errors import ApiError, ErrorCode
from obfleet.monitor.metrics import CONTENT_TYPE
from obfleet.records.obproxy import exporters
from obfleet.security.roles import Resource

router = APIRouter(
    tags=["monitoring (extension)"], dependencies=[Depends(require(Resource.OBPROXY))]
)


@router.get("/metrics", response_class=Response, summary="obfleet's metrics (Prometheus text)")
async def metrics(ctx: CtxDep) -> Response:
    """obfleet's own metrics for Prometheus: HTTP requests, tasks and subtasks, the engine, the
    OBProxy health checks, the config server and the metadb pool. Needs OBPROXY:READ."""
    if ctx.metrics is None:
        raise ApiError(ErrorCode.NOT_FOUND, "No route /metrics (OBFLEET_METRICS=0).")
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


@router.get(
    "/api/v2/obproxy/prometheus-targets",
    response_model=list[TargetGroup],
    summary="Every OBProxy's exporter, as Prometheus HTTP service discovery (http_sd) targets",
)
def prometheus_targets(session: SessionDep) -> JSONResponse:
    """A bare JSON list, as Prometheus' http_sd_config reads it: one target group per
    OBProxy, with its cluster and host as labels."""
    return JSONResponse(
        [
            {
                "targets": [_address(e.ip, e.exporter_port)],
                "labels": {
                    "cluster": e.cluster_name,
                    "obproxy_cluster_id": str(e.cluster_id),
                    "obproxy_id": str(e.obproxy_id),
                    "host": e.ip,
                    "status": e.status,
                },
            }
            for e in exporters(session)
        ]
    )


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
