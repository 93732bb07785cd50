"""Cluster-level steps of OCP's OBProxy tasks: the start and end of "Install obproxy" and of
"Offline obproxy". The per-host steps (install, start, stop...) hang between them."""

from __future__ import annotations

import asyncio

from obfleet.appcontext import AppContext
from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.records import obproxy as clusters

CLUSTER_ID = "obproxy_cluster_id"
CLUSTER_NAME = "obproxy_cluster_name"
NEED_DELETE_CLUSTER = "obproxy_need_delete_cluster"


def _app(ctx: SubtaskContext) -> AppContext:
    app: AppContext = ctx.resources
    return app


def _cluster_id(ctx: SubtaskContext) -> int:
    return int(ctx.require(CLUSTER_ID))


class PrepareObproxyInstall(Subtask):
    name = "Prepare obproxy install"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = _cluster_id(ctx)

        def check() -> int:
            with _app(ctx).db.session() as session:
                return clusters.get(session, cluster_id).parameter_version

        version = await asyncio.to_thread(check)
        ctx.log(
            f"OBProxy cluster {ctx.require(CLUSTER_NAME)} (id {cluster_id}) is recorded, "
            f"parameter version {version}"
        )
        ctx.set("obproxy_parameter_version", str(version))

    async def rollback(self, ctx: SubtaskContext) -> None:
        # Rolling back a cluster creation forgets the cluster it created (if nothing uses it).
        if ctx.get(NEED_DELETE_CLUSTER) != "true":
            return
        cluster_id = _cluster_id(ctx)

        def forget() -> bool:
            with _app(ctx).db.transaction() as session:
                return clusters.forget(session, cluster_id)

        if await asyncio.to_thread(forget):
            ctx.log(f"forgot OBProxy cluster {ctx.require(CLUSTER_NAME)} (id {cluster_id})")


class FinishInstall(Subtask):
    name = "Finish node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        ctx.log(f"OBProxy cluster {ctx.require(CLUSTER_NAME)} is ready")


class StartOffline(Subtask):
    name = "Start node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = _cluster_id(ctx)

        def check() -> None:
            with _app(ctx).db.session() as session:
                clusters.get(session, cluster_id)

        await asyncio.to_thread(check)
        ctx.log(f"offlining OBProxy cluster {ctx.require(CLUSTER_NAME)} (id {cluster_id})")


class FinishOffline(Subtask):
    """Forgets the cluster: its links, its root@proxysys credential and its record."""

    name = "Finish node"
    timeout = 30
    prohibit_rollback = True  # a forgotten cluster record cannot be brought back

    async def execute(self, ctx: SubtaskContext) -> None:
        if ctx.get(NEED_DELETE_CLUSTER) != "true":
            return
        cluster_id = _cluster_id(ctx)

        def forget() -> bool:
            with _app(ctx).db.transaction() as session:
                return clusters.forget(session, cluster_id)

        gone = await asyncio.to_thread(forget)
        ctx.log(
            f"OBProxy cluster {ctx.require(CLUSTER_NAME)} "
            f"{'deleted' if gone else 'was already deleted'}"
        )
