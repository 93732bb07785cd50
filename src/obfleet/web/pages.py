"""The console's pages: each reads what it shows through the API as the logged-in user and
renders it; the buttons on them send their requests to the API from the browser."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from obfleet.web import dag
from obfleet.web.frame import PREFIX, ConsoleRoute, Viewer, ViewerDep, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

CLUSTERS = "/api/v2/obproxy/clusters"
TASKS = "/api/v2/tasks/instances"
HOSTS = "/api/v2/compute/hosts"
CREDENTIALS = "/api/v2/credentials"
PACKAGES = "/api/v2/software-packages"
OB_CLUSTERS = "/api/v2/ob/clusters"
PARAMETER_INFO = "/api/v2/obproxy/parameterInfo"
# One page of a list is as many as the API gives at once: the console shows them all.
ALL = 2000
FINISHED = ("SUCCESSFUL", "FAILED")


def cluster_status(cluster: dict[str, Any]) -> str:
    """RUNNING when every obproxy is, else the most common other status (none: EMPTY)."""
    statuses = Counter(p["status"] for p in cluster["obproxies"])
    others = [(n, s) for s, n in statuses.items() if s != "RUNNING"]
    if not statuses:
        return "EMPTY"
    return max(others)[1] if others else "RUNNING"


@router.get("/clusters")
async def clusters(request: Request, viewer: ViewerDep, name: str = "") -> HTMLResponse:
    found = await viewer.api.contents(CLUSTERS, name=name, size=ALL)
    for cluster in found:
        cluster["up"] = sum(p["status"] == "RUNNING" for p in cluster["obproxies"])
        cluster["state"] = cluster_status(cluster)
    return render(request, "clusters.html", viewer, clusters=found, name=name, nav="clusters")


@router.get("/clusters/new")
async def create_cluster(request: Request, viewer: ViewerDep) -> HTMLResponse:
    hosts = await viewer.api.contents(HOSTS, size=ALL)
    # The password box is shown to who may read it: names only, never a secret.
    proxyro = (
        await viewer.api.contents(CREDENTIALS, targetType="OB_CLUSTER", size=ALL)
        if viewer.can("CREDENTIAL")
        else []
    )
    return render(
        request,
        "create.html",
        viewer,
        nav="clusters",
        hosts=[h for h in hosts if h["status"] == "ONLINE"],
        ports_used=ports_used(await viewer.api.contents(CLUSTERS, size=ALL)),
        packages=await viewer.api.contents(PACKAGES, size=ALL),
        ob_clusters=await viewer.api.contents(OB_CLUSTERS, size=ALL),
        proxyro_credentials=proxyro,
        credential_names={c["id"]: c["name"] for c in proxyro},
        **await _catalog(viewer),
    )


def ports_used(clusters: list[dict[str, Any]]) -> dict[int, dict[int, str]]:
    """By host id, the ports obfleet's recorded obproxies use there and whose cluster's they are:
    what obfleet knows of a host's ports (anything else on the host it learns at install)."""
    used: dict[int, dict[int, str]] = {}
    for cluster in clusters:
        for proxy in cluster["obproxies"]:
            on_host = used.setdefault(proxy["hostId"], {})
            on_host[proxy["sqlPort"]] = on_host[proxy["exporterPort"]] = cluster["name"]
    return used


async def _catalog(viewer: Viewer) -> dict[str, Any]:
    """The parameter catalog for a page's parameter pickers: listed, and by name for the
    type-aware inputs."""
    catalog = await viewer.api.contents(PARAMETER_INFO)
    return {"catalog": catalog, "catalog_by_name": {p["name"]: p for p in catalog}}


@router.get("/clusters/{cluster_id}")
async def cluster(request: Request, viewer: ViewerDep, cluster_id: int) -> HTMLResponse:
    found = await viewer.api.get(f"{CLUSTERS}/{cluster_id}")
    parameters = await viewer.api.contents(f"{CLUSTERS}/{cluster_id}/parameters")
    for parameter in parameters:
        # The obproxies disagree when they hold more than one value (unless the API says).
        parameter.setdefault("drift", len({v["value"] for v in parameter["values"]}) > 1)
    hosts = await viewer.api.contents(HOSTS, size=ALL)
    used = {p["hostId"] for p in found["obproxies"]}
    return render(
        request,
        "cluster.html",
        viewer,
        nav="clusters",
        cluster=found,
        state=cluster_status(found),
        parameters=parameters,
        free_hosts=[h for h in hosts if h["status"] == "ONLINE" and h["id"] not in used],
        packages=await viewer.api.contents(PACKAGES, size=ALL),
        ob_clusters=await viewer.api.contents(OB_CLUSTERS, size=ALL),
        **await _catalog(viewer),
    )


@router.get("/tasks")
async def tasks(
    request: Request,
    viewer: ViewerDep,
    status: str = "",
    type: str = "",
    name: str = "",
    since: str = "",
    until: str = "",
) -> HTMLResponse:
    found = await viewer.api.contents(TASKS, status=status, type=type, name=name, size=ALL)
    # The API filters by status, type and name; the time window is the page's (OCP's console
    # filters it the same way, on the start time it shows).
    shown = [t for t in found if _within(t.get("startTime") or t["createTime"], since, until)]
    shown.sort(key=lambda t: t["id"], reverse=True)
    filters = {"status": status, "type": type, "name": name, "since": since, "until": until}
    return render(request, "tasks.html", viewer, nav="tasks", tasks=shown, filters=filters)


def _within(time: str, since: str, until: str) -> bool:
    """ISO times compare as text at the minute the filters give (both in the server's zone)."""
    minute = time[:16]
    return (not since or minute >= since[:16]) and (not until or minute <= until[:16])


@router.get("/tasks/{task_id}")
async def task(request: Request, viewer: ViewerDep, task_id: int) -> HTMLResponse:
    return await _task_view(request, viewer, task_id, "task.html")


@router.get("/tasks/{task_id}/graph")
async def task_graph(request: Request, viewer: ViewerDep, task_id: int) -> HTMLResponse:
    """The task's head and graph alone, for the page to swap in as the task moves."""
    return await _task_view(request, viewer, task_id, "task_graph.html")


async def _task_view(request: Request, viewer: Viewer, task_id: int, template: str) -> HTMLResponse:
    found = await viewer.api.get(f"{TASKS}/{task_id}")
    graph = dag.layout(found["subtasks"])
    return render(request, template, viewer, nav="tasks", task=found, graph=graph)


@router.get("/tasks/{task_id}/subtasks/{subtask_id}")
async def subtask(
    request: Request, viewer: ViewerDep, task_id: int, subtask_id: int
) -> HTMLResponse:
    """A subtask's facts, actions and log, beside the graph."""
    found = await viewer.api.get(f"{TASKS}/{task_id}")
    sub = next((s for s in found["subtasks"] if s["id"] == subtask_id), None)
    log = await viewer.api.get(f"{TASKS}/{task_id}/subtasks/{subtask_id}/log")
    return render(request, "subtask.html", viewer, task=found, sub=sub, log=log["log"])


@router.get("/hosts")
async def hosts(request: Request, viewer: ViewerDep) -> HTMLResponse:
    return render(
        request,
        "hosts.html",
        viewer,
        nav="hosts",
        hosts=await viewer.api.contents(HOSTS, size=ALL),
        credentials=await viewer.api.contents(CREDENTIALS, size=ALL),
    )


@router.get("/credentials")
async def credentials(request: Request, viewer: ViewerDep) -> HTMLResponse:
    found = await viewer.api.contents(CREDENTIALS, size=ALL)
    return render(request, "credentials.html", viewer, nav="credentials", credentials=found)


@router.get("/packages")
async def packages(request: Request, viewer: ViewerDep) -> HTMLResponse:
    found = await viewer.api.contents(PACKAGES, size=ALL)
    return render(request, "packages.html", viewer, nav="packages", packages=found)


@router.get("/ob-clusters")
async def ob_clusters(request: Request, viewer: ViewerDep) -> HTMLResponse:
    found = await viewer.api.contents(OB_CLUSTERS, size=ALL)
    proxies = await viewer.api.contents(CLUSTERS, size=ALL)
    linked: dict[str, list[dict[str, Any]]] = {}
    for proxy in proxies:
        for link in proxy["obLinks"]:
            linked.setdefault(link["clusterName"], []).append(proxy)
    return render(
        request, "obclusters.html", viewer, nav="obclusters", ob_clusters=found, linked=linked
    )
