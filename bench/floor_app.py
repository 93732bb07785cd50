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
import base64
import gc
import threading
from collections.abc import AsyncIterator, Sequence
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
    Engine,
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
from sqlalchemy.orm import Session, sessionmaker

META = MetaData()
OB = Table(
    "ob_cluster",
    META,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("status", String),
    Column("number", Integer),
    Column("type", String),
)
CLUSTER = Table(
    "cluster",
    META,
    Column("id", Integer, primary_key=True),
    *(Column(n, String) for n in ("name", "creatorName", "createTime", "updateTime", "address")),
    *(Column(n, String) for n in ("workMode", "installPath", "runUser")),
    *(Column(n, Integer) for n in ("parameterVersion", "creatorId", "port", "credentialId")),
)
LINK = Table(
    "link",
    META,
    Column("id", Integer, primary_key=True),
    Column("cluster_id", Integer, index=True),
    Column("ob_id", Integer),
    Column("username", String),
)
OBPROXY = Table(
    "obproxy",
    META,
    Column("id", Integer, primary_key=True),
    Column("cluster_id", Integer, index=True),
    *(Column(n, String) for n in ("ip", "version", "status", "idc")),
    *(Column(n, Integer) for n in ("hostId", "sqlPort", "exporterPort")),
)
TASK = Table(
    "task",
    META,
    Column("id", Integer, primary_key=True),
    *(Column(n, String) for n in ("name", "type", "status", "operation", "creatorName")),
    *(Column(n, String) for n in ("clusterName", "createTime", "startTime", "finishTime")),
    *(Column(n, Integer) for n in ("creatorId", "clusterId", "hostId")),
)
SUBTASK = Table(
    "subtask",
    META,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, index=True),
    *(Column(n, String) for n in ("name", "description", "status", "operation")),
)
HOST = Table(
    "host",
    META,
    Column("id", Integer, primary_key=True),
    *(Column(n, String) for n in ("name", "innerIpAddress", "status", "createTime")),
)


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
COUNTS = {t.name: select(func.count()).select_from(t) for t in (HOST, CLUSTER, TASK)}
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


class Floor:
    """The app's state: its metadb, the expected credentials, one writer at a time."""

    def __init__(self, db_path: str, password: str) -> None:
        self.engine: Engine = create_engine(
            f"sqlite:///{db_path}", connect_args={"check_same_thread": False}, pool_size=20
        )
        META.create_all(self.engine)
        self.sessions = sessionmaker(self.engine)
        self.authorization = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        self.write_lock = threading.Lock()


def state(request: Request) -> Floor:
    floor: Floor = request.app.state.floor
    return floor


async def login(request: Request) -> str:
    if request.headers.get("authorization") != state(request).authorization:
        raise HTTPException(401)
    return "admin"


async def session(request: Request) -> AsyncIterator[Session]:
    with state(request).sessions() as s:
        yield s


async def page_request(
    page: int = Query(1, ge=1), size: int = Query(10, ge=1, le=2000), sort: str | None = None
) -> tuple[int, int]:
    return page, size


class CreateIn(BaseModel):
    name: str
    workMode: str
    obLinks: list[dict[str, Any]]


Db = Annotated[Session, Depends(session)]
Paging = Annotated[tuple[int, int], Depends(page_request)]
AUTHED = [Depends(login)]


def floor_app(floor: Floor) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2  # as obfleet on SQLite
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, *gc.get_threshold()[1:])
        yield

    app = FastAPI(lifespan=lifespan)
    app.state.floor = floor

    def page_of(s: Session, statement: Any, table: str, paging: tuple[int, int]) -> Any:
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

    @app.get("/api/v2/time", response_class=PlainTextResponse)
    def server_time() -> PlainTextResponse:
        return PlainTextResponse(now())

    @app.get("/api/v2/compute/hosts", dependencies=AUTHED)
    def hosts(
        s: Db,
        paging: Paging,
        status: list[str] | None = Query(None),
        keyword: str | None = Query(None, max_length=255),
        included: list[str] | None = Query(None, alias="includedServiceType"),
        excluded: list[str] | None = Query(None, alias="excludedServiceType"),
    ) -> Response:
        rows, page = page_of(s, HOSTS, "host", paging)
        return envelope({"contents": dicts(rows), "page": page})

    @app.get("/api/v2/obproxy/clusters", dependencies=AUTHED)
    def clusters(s: Db, paging: Paging, name: str | None = Query(None)) -> Response:
        rows, page = page_of(s, CLUSTERS, "cluster", paging)
        ids = [r[0] for r in rows]
        links, obproxies = parts(s, LINKS_OF, ids), parts(s, OBPROXIES_OF, ids)
        contents = dicts(rows)
        for cluster in contents:
            key = cluster["id"]
            cluster["obLinks"], cluster["obproxies"] = links[key], obproxies[key]
            cluster["configUrl"] = f"http://floor/services?ObproxyClusterName={cluster['name']}"
        return envelope({"contents": contents, "page": page})

    @app.get("/api/v2/tasks/instances", dependencies=AUTHED)
    def tasks(
        s: Db, paging: Paging, status: list[str] | None = Query(None), name: str | None = None
    ) -> Response:
        rows, page = page_of(s, TASKS, "task", paging)
        subtasks = parts(s, SUBTASKS_OF, [r[0] for r in rows])
        contents = dicts(rows)
        for task in contents:
            task["subtasks"] = subtasks[task["id"]]
        return envelope({"contents": contents, "page": page})

    @app.get("/api/v2/tasks/instances/{task_id}", dependencies=AUTHED)
    def task(task_id: int, s: Db) -> Response:
        row = s.execute(TASK_STATUS, {"id": task_id}).one()
        return envelope({"id": row.id, "status": row.status})

    @app.post("/api/v2/obproxy/clusters", dependencies=AUTHED)
    def create(body: CreateIn) -> Response:
        return envelope({"id": record_create(floor, body.name, body.workMode)})

    @app.post("/api/v2/ob/clusters/import", dependencies=AUTHED)
    def import_ob() -> Response:
        with floor.write_lock, floor.engine.begin() as conn:
            conn.execute(insert(OB).values(name="obbench", status="RUNNING", number=1, type="C"))
        return envelope(None)

    answer = orjson.dumps(
        {"Code": 200, "Data": {"ObProxyBinUrl": "", "ObRootServiceInfoUrlList": []}}
    )

    @app.get("/services")
    async def config_server() -> Response:
        return Response(answer, media_type="application/json")

    return app


def record_create(floor: Floor, name: str, work_mode: str) -> int:
    """The cluster, its link, its task and three subtasks, in one write transaction."""
    stamp = now()
    with floor.write_lock, floor.engine.begin() as conn:
        cluster_id = conn.execute(
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
        conn.execute(insert(LINK).values(cluster_id=cluster_id, ob_id=1, username="proxyro"))
        task_id = conn.execute(
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
        conn.execute(
            insert(SUBTASK),
            [
                {"task_id": task_id, "name": step, "description": step, "status": "SUCCESSFUL"}
                for step in ("Record the cluster", "Link the OceanBase clusters", "Finish")
            ],
        )
    return int(task_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--password", default="Bench_Pass_12")
    args = parser.parse_args()
    app = floor_app(Floor(args.db, args.password))
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
