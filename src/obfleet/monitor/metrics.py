"""The service's Prometheus metrics, one registry per app (tests make many apps in a process).

Served at `/metrics` (api/routes/metrics.py). What is counted where: HTTP requests in the
request middleware (api/context.py), tasks and subtasks through the engine's observer hooks
(`EngineObserver`, wired in services/lifecycle.py), OBProxy health by the health monitor,
config server requests by its route; the READY queue and the metadb pool are read when
scraped. One process serves the API, so no multiprocess mode is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine

from obfleet.engine.observer import EngineObserver

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests and logins: milliseconds to seconds. Subtasks and tasks: seconds to an hour.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SLOW_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
UNMATCHED = "unmatched"  # the route label of a request no route answered (404s)


class Metrics(EngineObserver):
    """Every metric obfleet exports, registered in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "obfleet_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "obfleet_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.subtasks = Counter(
            "obfleet_subtasks",
            "Subtask runs ended on this node, by subtask name, action and outcome.",
            ["name", "action", "outcome"],
            registry=r,
        )
        self.subtask_seconds = Histogram(
            "obfleet_subtask_duration_seconds",
            "Time a subtask run took, by subtask name, action and outcome.",
            ["name", "action", "outcome"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.tasks = Counter(
            "obfleet_tasks",
            "Tasks settled on this node, by task name, status and operation.",
            ["name", "status", "operation"],
            registry=r,
        )
        self.task_seconds = Histogram(
            "obfleet_task_duration_seconds",
            "Time from a task's start to its settling, by task name and status.",
            ["name", "status"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.running_subtasks = Gauge(
            "obfleet_engine_running_subtasks", "Subtasks this node runs now.", registry=r
        )
        self.takeovers = Counter(
            "obfleet_engine_lease_takeovers",
            "Subtasks this node reclaimed after their runner stopped renewing its lease.",
            registry=r,
        )
        self.claim_seconds = Histogram(
            "obfleet_engine_claim_duration_seconds",
            "Time one claiming round of the engine took (finish, log, claim: one transaction).",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.claims = Counter(
            "obfleet_engine_claimed_subtasks", "Subtasks this node claimed.", registry=r
        )
        self.obproxy_up = Gauge(
            "obfleet_obproxy_up",
            "1 when the last health check's root@proxysys login succeeded, else 0.",
            ["cluster", "host", "port"],
            registry=r,
        )
        self.obproxy_login_seconds = Gauge(
            "obfleet_obproxy_login_seconds",
            "How long the last health check's login took (to its failure, when it failed).",
            ["cluster", "host", "port"],
            registry=r,
        )
        self.configserver_requests = Counter(
            "obfleet_configserver_requests",
            "Config server requests answered, by Action, method and status.",
            ["action", "method", "status"],
            registry=r,
        )

    # --- read when scraped ---------------------------------------------------------------

    def watch_ready_queue(self, count: Callable[[], int]) -> None:
        """Export `count()` (the READY subtasks on every node) at each scrape."""
        Gauge(
            "obfleet_engine_ready_subtasks",
            "Subtasks waiting for a runner (READY), on every node.",
            registry=self.registry,
        ).set_function(count)

    def watch_pool(self, engine: Engine) -> None:
        """Export the metadb connection pool's figures at each scrape."""
        pool = engine.pool
        for name, doc, read in (
            ("size", "Connections the pool keeps.", "size"),
            ("checked_out", "Connections in use now.", "checkedout"),
            ("overflow", "Connections opened beyond the pool's size.", "overflow"),
            ("checked_in", "Idle connections in the pool.", "checkedin"),
        ):
            figure = getattr(pool, read, None)
            if callable(figure):
                Gauge(f"obfleet_metadb_pool_{name}", doc, registry=self.registry).set_function(
                    figure
                )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- HTTP and the config server ------------------------------------------------------

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_seconds.labels(route, method).observe(seconds)

    def configserver_answered(self, action: str, method: str, status: int) -> None:
        self.configserver_requests.labels(action, method, str(status)).inc()

    # --- OBProxy health ------------------------------------------------------------------

    def health_round(self, seen: Iterable[tuple[str, str, int, bool, float]]) -> None:
        """One health round's probes (cluster, host, port, up, login seconds); OBProxies the
        round did not check (deleted, stopped) leave the gauges."""
        self.obproxy_up.clear()
        self.obproxy_login_seconds.clear()
        for cluster, host, port, up, seconds in seen:
            self.obproxy_up.labels(cluster, host, str(port)).set(1 if up else 0)
            self.obproxy_login_seconds.labels(cluster, host, str(port)).set(seconds)

    # --- the task engine (EngineObserver) -------------------------------------------------

    def subtask_finished(self, name: str, action: str, outcome: str, seconds: float) -> None:
        self.subtasks.labels(name, action, outcome).inc()
        self.subtask_seconds.labels(name, action, outcome).observe(seconds)

    def task_finished(self, name: str, status: str, operation: str, seconds: float) -> None:
        self.tasks.labels(name, status, operation).inc()
        self.task_seconds.labels(name, status).observe(seconds)

    def running(self, count: int) -> None:
        self.running_subtasks.set(count)

    def claimed(self, count: int, seconds: float) -> None:
        self.claims.inc(count)
        self.claim_seconds.observe(seconds)

    def taken_over(self, count: int) -> None:
        self.takeovers.inc(count)
