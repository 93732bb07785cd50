"""Health of the recorded OBProxies: a `root@proxysys` login on each one's SQL port, every
OBFLEET_HEALTH_INTERVAL seconds (0 turns the checks off).

One round, `check_once`, in three steps, each callable on its own (the tests interleave them):

1. `load_targets` reads every `obproxy_server` row whose status is RUNNING or UNAVAILABLE, with its
   cluster's root@proxysys password from the password box (revealed once per cluster, held in
   memory for the round only, never logged). Rows in an operation (CREATING, DELETING, RESTARTING,
   UPGRADING, TAKINGOVER, ...) belong to their task and are not checked.
2. `probe_all` logs in and out of every target with a short timeout (OBFLEET_HEALTH_TIMEOUT):
   PyMySQL blocks, so the logins run on worker threads of the round's own, at most `concurrency`
   at once. A round over N unreachable OBProxies takes about ceil(N / concurrency) timeouts
   rather than N, and never holds up the default thread pool the flows' admin calls use.
3. `record` writes what was seen, in one transaction, with UPDATEs that are conditional on the
   status the row must still have, and for a status change also on the row's `update_time`
   being the one step 1 read:

       login   was          SET                                  WHERE status =  update_time
       ok      UNAVAILABLE  status=RUNNING, last_active_time=t   UNAVAILABLE     as read
       ok      RUNNING      last_active_time=t                   RUNNING         (any)
       failed  RUNNING      status=UNAVAILABLE                   RUNNING         as read
       failed  UNAVAILABLE  nothing: last_active_time keeps the last time it answered

   A task that moved the row into an operation between steps 1 and 3 therefore always wins: the
   UPDATE matches no row. So does one that has already come and gone (a restart: RESTARTING,
   then RUNNING again), since every status change stamps `update_time` (the ORM's and these
   UPDATEs' alike, through the column's onupdate) while a heartbeat leaves it alone: a probe
   made before such an operation says nothing about the row after it, and the next round judges
   it afresh. Only the two status changes are logged (with the reason), and only by the writer
   whose UPDATE matched, so a change is logged once however many replicas check.

Several replicas may run rounds at the same time, and that is acceptable without any
coordination: every write states a fresh observation ("it answered at t", "it did not answer"),
guarded by the row's current status, so the rows always show the latest observation of some
replica and never touch an operation's rows; a round repeated is a round redone, never a
different state. The cost is one extra login per OBProxy per replica and interval, which
OBProxy's admin port takes easily. Should two replicas disagree (a network partition between one
of them and a host), the status follows whichever checked last: obfleet cannot manage an OBProxy
that some of its replicas cannot reach, so UNAVAILABLE is a fair answer then.

The heartbeat (RUNNING stays RUNNING) leaves `update_time` alone: that column says when the
record changed, and a heartbeat changes nothing but `last_active_time`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pymysql
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from obfleet.config import MAX_HEALTH_TIMEOUT_S
from obfleet.monitor.metrics import Metrics
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.records import credentials
from obfleet.security.secrets import SecretBox
from obfleet.store.base import UTCDateTime
from obfleet.store.db import Database
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus
from obfleet.timefmt import utcnow

__all__ = [
    "CHECKED",
    "HealthMonitor",
    "Probe",
    "RoundResult",
    "Target",
    "Transition",
    "check_once",
    "check_timeout",
    "load_targets",
    "probe_all",
    "record",
]

log = logging.getLogger("obfleet.health")

RUNNING, UNAVAILABLE = ObproxyStatus.RUNNING, ObproxyStatus.UNAVAILABLE
# The statuses the checker owns; every other status belongs to a task's operation.
CHECKED = (RUNNING, UNAVAILABLE)
DEFAULT_CONCURRENCY = 64
DEFAULT_TIMEOUT_S = 3.0

_SERVERS = cast(Table, ObproxyServer.__table__)


@dataclass(frozen=True)
class Target:
    """One obproxy to check, as its row stood when the round read it."""

    server_id: int
    cluster_name: str
    ip: str
    sql_port: int
    status: str
    password: str = field(repr=False)
    # The row's update_time as read: a status change is written only while it still stands.
    update_time: datetime

    @property
    def label(self) -> str:
        return f"obproxy {self.server_id} ({self.ip}:{self.sql_port}, cluster {self.cluster_name})"


@dataclass(frozen=True)
class Probe:
    """What one login attempt found: `error` is None when root@proxysys got in."""

    target: Target
    at: datetime
    error: str | None = None
    seconds: float = 0.0  # how long the login took to succeed or fail

    @property
    def alive(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Transition:
    """A status this round changed (RUNNING -> UNAVAILABLE or back)."""

    server_id: int
    label: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class RoundResult:
    probes: list[Probe]
    transitions: list[Transition]


# --- 1. what to check -----------------------------------------------------------------------


def load_targets(session: Session, box: SecretBox) -> list[Target]:
    """Every obproxy whose status is RUNNING or UNAVAILABLE, with its root@proxysys password.

    A cluster without a proxysys credential is checked with an empty password (OBProxy's own
    default); one whose credential cannot be opened is left out of the round, with a warning,
    since that is obfleet's fault, not the OBProxy's.
    """
    rows = session.execute(
        select(
            ObproxyServer.id,
            ObproxyServer.ip,
            ObproxyServer.sql_port,
            ObproxyServer.status,
            ObproxyServer.update_time,
            ObproxyCluster.id,
            ObproxyCluster.name,
            ObproxyCluster.proxysys_credential_id,
        )
        .join(ObproxyCluster, ObproxyCluster.id == ObproxyServer.cluster_id)
        .where(ObproxyServer.status.in_(CHECKED))
        .order_by(ObproxyServer.id)
    ).all()
    passwords: dict[int, str | None] = {}
    targets = []
    for server_id, ip, sql_port, status, updated, cluster_id, cluster_name, credential_id in rows:
        if cluster_id not in passwords:
            passwords[cluster_id] = _password(session, box, cluster_name, credential_id)
        password = passwords[cluster_id]
        if password is not None:
            targets.append(Target(server_id, cluster_name, ip, sql_port, status, password, updated))
    return targets


def _password(
    session: Session, box: SecretBox, cluster_name: str, credential_id: int | None
) -> str | None:
    if credential_id is None:
        return ""
    try:
        return credentials.reveal(session, box, credential_id).secret
    except Exception as exc:  # a missing credential or a changed secret key: skip the cluster
        log.warning(
            "cannot check the obproxies of cluster %s: its root@proxysys credential %s cannot "
            "be opened (%s)",
            cluster_name,
            credential_id,
            type(exc).__name__,
        )
        return None


# --- 2. the logins --------------------------------------------------------------------------


# What a login that reached no OBProxy raises: AdminError (PyMySQL's own errors, wrapped), an
# OSError PyMySQL let through.
_NO_LOGIN = (AdminError, OSError, pymysql.MySQLError)
# What PyMySQL raises, unwrapped, on a greeting it cannot decode (something other than an
# OBProxy answering on the port): struct.error, ValueError (int() of a version, a UTF-8
# decode), UnboundLocalError (a field it never got to read), IndexError. The one ValueError
# obfleet could cause itself, a connect_timeout PyMySQL refuses, is ruled out before any login
# (check_timeout), so a ValueError here is the answer's.
_GARBLED = (struct.error, ValueError, UnboundLocalError, IndexError)


def check_timeout(timeout: float) -> None:
    """The login timeout PyMySQL accepts (its connect_timeout: > 0 and at most a year)."""
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_HEALTH_TIMEOUT_S):
        raise ValueError(
            f"the health check login timeout must be > 0 and <= {MAX_HEALTH_TIMEOUT_S} "
            f"seconds, not {timeout}"
        )


def _login(target: Target, timeout: float) -> Probe:
    """A probe of one target. Only what the target's answer (or its silence) causes counts as
    down; anything else (a bug, a setting PyMySQL refuses) is raised, failing the round, rather
    than marking every OBProxy UNAVAILABLE for obfleet's own fault."""
    client = ProxysysClient(target.ip, target.sql_port, target.password, timeout=timeout)
    began = time.perf_counter()
    error: str | None
    try:
        client.login()
    except _NO_LOGIN as exc:
        # AdminError names the user and the address, never the password.
        error = str(exc) or type(exc).__name__
    except _GARBLED as exc:
        error = f"{client.label}: cannot log in: not an OBProxy greeting ({type(exc).__name__})"
    else:
        error = None
    return Probe(target, utcnow(), error, time.perf_counter() - began)


async def probe_all(
    targets: Iterable[Target],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
    executor: ThreadPoolExecutor | None = None,
) -> list[Probe]:
    """Log in to every target, at most `concurrency` at once; the probes in target order.
    Raises ValueError for a timeout PyMySQL would refuse, before any login."""
    check_timeout(timeout)
    targets = list(targets)
    if not targets:
        return []
    own = executor is None
    pool = executor or ThreadPoolExecutor(
        min(concurrency, len(targets)), thread_name_prefix="obfleet-health"
    )
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def one(target: Target) -> Probe:
        async with gate:
            return await loop.run_in_executor(pool, _login, target, timeout)

    try:
        return list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        if own:
            # The threads end by themselves within the timeout, even when the round is cancelled.
            pool.shutdown(wait=False, cancel_futures=True)


# --- 3. what was seen -----------------------------------------------------------------------


def _set(values: dict[str, Any], expected: str, *, unchanged: bool = False) -> Any:
    """An UPDATE of row `sid` while its status is `expected` (and, `unchanged`, while its
    update_time is still `read`)."""
    stmt = update(_SERVERS).where(_SERVERS.c.id == bindparam("sid"), _SERVERS.c.status == expected)
    if unchanged:
        stmt = stmt.where(_SERVERS.c.update_time == bindparam("read", type_=UTCDateTime()))
    return stmt.values(**values)


_SEEN = bindparam("seen", type_=UTCDateTime())
# The status changes stamp update_time (the column's onupdate), so a later round's stale probe
# cannot match either.
_BACK_UP = _set({"status": RUNNING, "last_active_time": _SEEN}, UNAVAILABLE, unchanged=True)
# update_time is set to itself: without it the column's onupdate would stamp every heartbeat.
_HEARTBEAT = _set({"last_active_time": _SEEN, "update_time": _SERVERS.c.update_time}, RUNNING)
_WENT_DOWN = _set({"status": UNAVAILABLE}, RUNNING, unchanged=True)


def record(session: Session, probes: Iterable[Probe]) -> list[Transition]:
    """Write what the probes saw (see the module docstring); returns the status changes made."""
    transitions = []
    heartbeats = []
    for probe in probes:
        target = probe.target
        if probe.alive and target.status == RUNNING:
            heartbeats.append({"sid": target.server_id, "seen": probe.at})
        elif probe.alive:
            changed = session.execute(
                _BACK_UP,
                {"sid": target.server_id, "seen": probe.at, "read": target.update_time},
            )
            if _rowcount(changed):
                transitions.append(
                    Transition(
                        target.server_id,
                        target.label,
                        UNAVAILABLE,
                        RUNNING,
                        "root@proxysys logged in again",
                    )
                )
            else:  # another replica saw it first: still a heartbeat if it is RUNNING now
                heartbeats.append({"sid": target.server_id, "seen": probe.at})
        elif target.status == RUNNING:
            changed = session.execute(
                _WENT_DOWN, {"sid": target.server_id, "read": target.update_time}
            )
            if _rowcount(changed):
                transitions.append(
                    Transition(
                        target.server_id,
                        target.label,
                        RUNNING,
                        UNAVAILABLE,
                        probe.error or "no answer",
                    )
                )
    if heartbeats:
        session.execute(_HEARTBEAT, heartbeats)
    return transitions


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def log_transitions(transitions: Iterable[Transition]) -> None:
    for t in transitions:
        level = logging.WARNING if t.new == UNAVAILABLE else logging.INFO
        log.log(level, "%s is %s (was %s): %s", t.label, t.new, t.old, t.reason)


# --- a round, and the loop ------------------------------------------------------------------


async def check_once(
    db: Database,
    box: SecretBox,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
    executor: ThreadPoolExecutor | None = None,
    metrics: Metrics | None = None,
) -> RoundResult:
    """One round: load, probe, record, log the status changes, export what was seen."""

    def load() -> list[Target]:
        with db.session() as session:
            return load_targets(session, box)

    targets = await asyncio.to_thread(load)
    probes = await probe_all(targets, timeout=timeout, concurrency=concurrency, executor=executor)

    def write() -> list[Transition]:
        with db.transaction() as session:
            return record(session, probes)

    transitions = await asyncio.to_thread(write) if probes else []
    log_transitions(transitions)
    if metrics is not None:
        metrics.health_round(
            (p.target.cluster_name, p.target.ip, p.target.sql_port, p.alive, p.seconds)
            for p in probes
        )
    return RoundResult(probes, transitions)


class HealthMonitor:
    """Runs `check_once` every `interval` seconds in the service's event loop.

    A round starts `interval` seconds after the previous one started, or at once when it took
    longer than that; rounds never overlap. The first round runs at start, so a restarted
    service soon shows what happened while it was away. A failed round (the metadb unreachable)
    is logged and the next one runs as usual.
    """

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        interval: float,
        timeout: float = DEFAULT_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        metrics: Metrics | None = None,
    ) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError("the health check interval must be positive")
        check_timeout(timeout)
        self.db = db
        self.box = box
        self.interval = interval
        self.timeout = timeout
        self.concurrency = concurrency
        self.metrics = metrics
        self.rounds = 0
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            return
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="obfleet-health")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="obfleet-health")
        log.info(
            "obproxy health checks every %gs (login timeout %gs, %d at once)",
            self.interval,
            self.timeout,
            self.concurrency,
        )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._executor is not None:
            # Logins under way end by themselves within the timeout.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def run_once(self) -> RoundResult:
        return await check_once(
            self.db,
            self.box,
            timeout=self.timeout,
            concurrency=self.concurrency,
            executor=self._executor,
            metrics=self.metrics,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.run_once()
            except Exception as exc:
                if not self.db.outage.noted(exc):  # an outage is logged once, not every round
                    log.warning("obproxy health round failed: %s: %s", type(exc).__name__, exc)
            self.rounds += 1
            await asyncio.sleep(max(0.0, started + self.interval - loop.time()))
