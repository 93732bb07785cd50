"""The stack's floor (issue 18): a bare FastAPI + SQLAlchemy app that answers the requests
`bench/fleet.py` measures, each with the least work its shape needs, run by
`python -m bench.fleet --floor` beside obfleet.

What obfleet's answers cost beyond this app's is obfleet's own; what this app's cost over its own
`/api/v2/time` is the floor of the stack obfleet is built on (FastAPI's dependency solving,
SQLAlchemy's sessions and statements, uvicorn, orjson) under the same server settings: httptools
and uvloop, 2 handler threads on SQLite, the cyclic GC settled after start. Each route keeps the
shape of obfleet's and drops everything else:

- one async dependency checks the Basic credentials against a string (a cached login);
- a session per request from an async generator dependency, closed when the answer is made;
- the same query parameters (page, size, sort, the filters), validated by FastAPI;
- each page's statements built once, the rows read as Core tuples: the page, a COUNT when the
  page is full, each page's parts by the range of its ids (a cluster's links joined to their
  OceanBase clusters, its obproxies; a task's subtasks);
- rows made into dicts by zipping their column names, no time formatting (times are stored as
  the text they are shown as), the envelope encoded with orjson, sorted keys;
- a create is one write transaction that records the cluster, its link, and the task and its
  subtasks as already SUCCESSFUL: no engine, no validation, no audit or log line; its poll is
  one task read. The row is the floor of the create's HTTP exchanges, not of a deploy.

Not a server anyone should run: no access control beyond the one password, no errors in OCP's
envelope. `python -m bench.floor_app --port P --db PATH`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
import orjson
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    between,
    bindparam,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

# Each request's page: (number, size).
Paging = tuple[int, int]
# Its tables prefixed, so that it can share a PostgreSQL database with obfleet's.
META = MetaData()


def table(
    name: str, strings: tuple[str, ...], integers: tuple[str, ...] = (), *more: Column[Any]
) -> Table:
    """floor_<name>: an id, `more` columns, then text and integer columns by name."""
    return Table(
        f"floor_{name}",
        META,
        Column("id", Integer, primary_key=True),
        *more,
        *(Column(n, String) for n in strings),
        *(Column(n, Integer) for n in integers),
    )


def parent(name: str) -> Column[Any]:
    return Column(name, Integer, index=True)


OB = table("ob_cluster", ("name", "status", "type"), ("number",))
CLUSTER = table(
    "cluster",
    (
        "name",
        "creatorName",
        "createTime",
        "updateTime",
        "address",
        "workMode",
        "installPath",
        "runUser",
    ),
    ("parameterVersion", "creatorId", "port", "credentialId"),
)
LINK = table("link", ("username",), ("ob_id",), parent("cluster_id"))
OBPROXY = table(
    "obproxy",
    ("ip", "version", "status", "idc"),
    ("hostId", "sqlPort", "exporterPort"),
    parent("cluster_id"),
)
TASK = table(
    "task",
    (
        "name",
        "type",
        "status",
        "operation",
        "creatorName",
        "clusterName",
        "createTime",
        "startTime",
        "finishTime",
    ),
    ("creatorId", "clusterId", "hostId"),
)
SUBTASK = table("subtask", ("name", "description", "status", "operation"), (), parent("task_id"))
HOST = table("host", ("name", "innerIpAddress", "status", "createTime"))


def paged_statement(table: Table) -> Any:
    return (
        select(table)
        .order_by(table.c.id)
        .limit(bindparam("size", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def parts_statement(*columns: Any, of: Column[Any]) -> Any:
    return select(*columns).where(between(of, bindparam("low"), bindparam("high"))).order_by(of)


HOSTS = paged_statement(HOST)
CLUSTERS = paged_statement(CLUSTER)
TASKS = paged_statement(TASK)
COUNTS = {t: select(func.count()).select_from(t) for t in (HOST, CLUSTER, TASK)}
LINKS_OF = parts_statement(
    LINK.c.cluster_id,
    LINK.c.ob_id.label("clusterId"),
    LINK.c.username,
    OB.c.name.label("clusterName"),
    OB.c.status,
    OB.c.number.label("obClusterId"),
    OB.c.type.label("clusterType"),
    of=LINK.c.cluster_id,
).join_from(LINK, OB, OB.c.id == LINK.c.ob_id)
OBPROXIES_OF = parts_statement(
    OBPROXY.c.cluster_id, *(c for c in OBPROXY.c if c.name != "cluster_id"), of=OBPROXY.c.cluster_id
)
SUBTASKS_OF = parts_statement(
    SUBTASK.c.task_id,
    *(SUBTASK.c[n] for n in ("id", "name", "description", "status")),
    of=SUBTASK.c.task_id,
)
TASK_STATUS = select(TASK.c.id, TASK.c.status).where(TASK.c.id == bindparam("id"))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def envelope(data: Any) -> Response:
    body = {"data": data, "duration": 0, "server": "floor", "status": 200, "successful": True}
    body |= {"timestamp": now(), "traceId": "0"}
    return Response(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), media_type="application/json")


def page_of(s: Session, statement: Any, table: Table, paging: Paging) -> Any:
    number, size = paging
    rows = s.execute(statement, {"size": size, "offset": (number - 1) * size}).all()
    total = len(rows) if len(rows) < size else s.scalar(COUNTS[table])
    return rows, {"number": number, "size": size, "totalElements": total}


def dicts(rows: Sequence[Row[Any]], skip: int = 0) -> list[dict[str, Any]]:
    if not rows:
        return []
    keys = [str(k) for k in rows[0]._fields[skip:]]  # str, not SQLAlchemy's subclass
    return [dict(zip(keys, row[skip:], strict=True)) for row in rows]


def parts(s: Session, statement: Any, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    rows = s.execute(statement, {"low": min(ids), "high": max(ids)}).all() if ids else []
    for row, wire in zip(rows, dicts(rows, skip=1), strict=True):
        grouped[row[0]].append(wire)
    return grouped


def host_page(s: Session, paging: Paging) -> Response:
    rows, page = page_of(s, HOSTS, HOST, paging)
    return envelope({"contents": dicts(rows), "page": page})


def cluster_page(s: Session, paging: Paging) -> Response:
    rows, page = page_of(s, CLUSTERS, CLUSTER, paging)
    ids = [r[0] for r in rows]
    links, obproxies = parts(s, LINKS_OF, ids), parts(s, OBPROXIES_OF, ids)
    contents = dicts(rows)
    for cluster in contents:
        key = cluster["id"]
        cluster["obLinks"], cluster["obproxies"] = links[key], obproxies[key]
        cluster["configUrl"] = f"http://floor/services?ObproxyClusterName={cluster['name']}"
    return envelope({"contents": contents, "page": page})


def task_page(s: Session, paging: Paging) -> Response:
    rows, page = page_of(s, TASKS, TASK, paging)
    subtasks = parts(s, SUBTASKS_OF, [r[0] for r in rows])
    contents = dicts(rows)
    for task in contents:
        task["subtasks"] = subtasks[task["id"]]
    return envelope({"contents": contents, "page": page})


def task_status(s: Session, task_id: int) -> Response:
    row = s.execute(TASK_STATUS, {"id": task_id}).one()
    return envelope({"id": row.id, "status": row.status})


def record_create(s: Session, name: str, work_mode: str) -> Response:
    """The cluster, its link, its task and three subtasks, in the write transaction."""
    stamp = now()
    cluster_id = s.execute(
        insert(CLUSTER)
        .values(
            name=name,
            workMode=work_mode,
            createTime=stamp,
            updateTime=stamp,
            installPath="/home/admin/obproxy",
            runUser="admin",
            parameterVersion=0,
            creatorId=1,
            creatorName="admin",
        )
        .returning(CLUSTER.c.id)
    ).scalar_one()
    s.execute(insert(LINK).values(cluster_id=cluster_id, ob_id=1, username="proxyro"))
    task_id = s.execute(
        insert(TASK)
        .values(
            name="Install obproxy",
            type="INSTALL",
            status="SUCCESSFUL",
            operation="EXECUTE",
            creatorId=1,
            creatorName="admin",
            clusterId=cluster_id,
            clusterName=name,
            createTime=stamp,
            startTime=stamp,
            finishTime=stamp,
        )
        .returning(TASK.c.id)
    ).scalar_one()
    steps = ("Record the cluster", "Link the OceanBase clusters", "Finish")
    s.execute(
        insert(SUBTASK),
        [{"task_id": task_id, "name": n, "description": n, "status": "SUCCESSFUL"} for n in steps],
    )
    return envelope({"id": task_id})


def import_ob(s: Session) -> Response:
    s.execute(insert(OB).values(name="obbench", status="RUNNING", number=1, type="C"))
    return envelope(None)


Work = Callable[[Session], Response]


class Floor:
    """The app's metadb and the expected credentials. Each request's database work is one sync
    function of a Session: run in a worker thread (one hop, as obfleet's handlers) or, with
    `async_db`, on the event loop through SQLAlchemy's asyncio extension and an async driver
    (aiosqlite, psycopg), no worker thread."""

    def __init__(self, url: str, password: str, async_db: bool = False) -> None:
        self.async_db = async_db
        self.authorization = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        options: dict[str, Any] = {"pool_size": 20}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False}
        sync_url = make_url(url).set(drivername=SYNC_DRIVERS[make_url(url).get_backend_name()])
        engine = create_engine(sync_url, **options)
        self.dialect = engine.dialect.name
        META.drop_all(engine)  # its own tables only: a run starts empty
        META.create_all(engine)
        if async_db:
            engine.dispose()
            async_url = sync_url.set(drivername=ASYNC_DRIVERS[sync_url.get_backend_name()])
            self.async_sessions = async_sessionmaker(create_async_engine(async_url, **options))
        else:
            self.sessions = sessionmaker(engine)
        self.thread_lock = threading.Lock()  # one SQLite writer at a time, as obfleet's gate
        self.loop_lock = asyncio.Lock()

    async def read(self, work: Work) -> Response:
        if self.async_db:
            async with self.async_sessions() as s:
                return await s.run_sync(work)
        with self.sessions() as s:  # closed on the loop, as obfleet's SQLite reads
            return await anyio.to_thread.run_sync(work, s)

    async def write(self, work: Work) -> Response:
        if self.async_db:
            async with self.loop_lock, self.async_sessions() as s, s.begin():
                return await s.run_sync(work)
        return await anyio.to_thread.run_sync(self._write, work)

    def _write(self, work: Work) -> Response:
        with self.thread_lock, self.sessions() as s, s.begin():
            return work(s)


SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}


def floor_of(request: Request) -> Floor:
    floor: Floor = request.app.state.floor
    return floor


async def login(request: Request) -> str:
    if request.headers.get("authorization") != floor_of(request).authorization:
        raise HTTPException(401)
    return "admin"


async def page_request(
    page: int = Query(1, ge=1), size: int = Query(10, ge=1, le=2000), sort: str | None = None
) -> Paging:
    return page, size


class CreateIn(BaseModel):
    name: str
    workMode: str
    obLinks: list[dict[str, Any]]


PageDep = Annotated[Paging, Depends(page_request)]
FloorDep = Annotated[Floor, Depends(floor_of)]
AUTHED = [Depends(login)]


def floor_app(floor: Floor) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # As many handler threads as obfleet's: 2 on SQLite, 4 on PostgreSQL (obfleet.api.threads).
        threads = 2 if floor.dialect == "sqlite" else 4
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, *gc.get_threshold()[1:])
        yield

    app = FastAPI(lifespan=lifespan)
    app.state.floor = floor

    @app.get("/api/v2/time", response_class=PlainTextResponse)
    def server_time() -> PlainTextResponse:
        return PlainTextResponse(now())

    @app.get("/api/v2/compute/hosts", dependencies=AUTHED)
    async def hosts(
        floor: FloorDep,
        paging: PageDep,
        status: list[str] | None = Query(None),
        keyword: str | None = Query(None, max_length=255),
        included: list[str] | None = Query(None, alias="includedServiceType"),
        excluded: list[str] | None = Query(None, alias="excludedServiceType"),
    ) -> Response:
        return await floor.read(lambda s: host_page(s, paging))

    @app.get("/api/v2/obproxy/clusters", dependencies=AUTHED)
    async def clusters(floor: FloorDep, paging: PageDep, name: str | None = None) -> Response:
        return await floor.read(lambda s: cluster_page(s, paging))

    @app.get("/api/v2/tasks/instances", dependencies=AUTHED)
    async def tasks(
        floor: FloorDep,
        paging: PageDep,
        status: list[str] | None = Query(None),
        name: str | None = None,
    ) -> Response:
        return await floor.read(lambda s: task_page(s, paging))

    @app.get("/api/v2/tasks/instances/{task_id}", dependencies=AUTHED)
    async def task(task_id: int, floor: FloorDep) -> Response:
        return await floor.read(lambda s: task_status(s, task_id))

    @app.post("/api/v2/obproxy/clusters", dependencies=AUTHED)
    async def create(body: CreateIn, floor: FloorDep) -> Response:
        return await floor.write(lambda s: record_create(s, body.name, body.workMode))

    @app.post("/api/v2/ob/clusters/import", dependencies=AUTHED)
    async def import_cluster(floor: FloorDep) -> Response:
        return await floor.write(import_ob)

    answer = orjson.dumps(
        {"Code": 200, "Data": {"ObProxyBinUrl": "", "ObRootServiceInfoUrlList": []}}
    )

    @app.get("/services")
    async def config_server() -> Response:
        return Response(answer, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--password", default="Bench_Pass_12")
    parser.add_argument("--async-db", action="store_true", help="async sessions and drivers")
    args = parser.parse_args()
    app = floor_app(Floor(args.database_url, args.password, args.async_db))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
