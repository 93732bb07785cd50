"""The config server's actions, dispatched per HTTP method on `Action` as ob-configserver does
(`server/handler.go`), plus the two OCP-style actions OBD uses against config servers that are
not ob-configserver.

Each action takes a session and the call and returns the `Data` of a successful answer, or
raises ConfigServerError. `answer` encodes either as an Outcome; the read actions' outcomes are
kept per process (obfleet.configserver.cache) while the config-server generation stands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.configserver import proxyconfig, registrations
from obfleet.configserver.access import TOKEN_PARAM, WritePolicy, check_writer
from obfleet.configserver.cache import Outcome, cache_for
from obfleet.configserver.errors import ConfigServerError, illegal_argument, not_found
from obfleet.configserver.rootservice import (
    ClusterQuery,
    RootServiceInfo,
    cluster_query,
    known,
    primary,
)
from obfleet.store.db import Database
from obfleet.store.models.configserver import GENERATION
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink

# strconv.ParseBool, which ob-configserver parses VersionOnly with.
TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
RS_QUERY = "parse rootservice query parameter"


@dataclass(frozen=True)
class Call:
    """One request: its query parameters (the first value of each, as Gin reads them), the base
    URL that the URLs in answers start with, the client's address and the rule its writes are
    checked against, and its body."""

    params: Mapping[str, str]
    base_url: str
    client: str
    policy: WritePolicy
    body: bytes = b""


def _clusters_named(session: Session, query: ClusterQuery) -> list[RootServiceInfo]:
    infos = known(session, [query.name], query.cluster_id).get(query.name)
    if not infos:
        raise not_found(f"no obcluster found with name {query.name} and id {query.cluster_id}")
    return infos


def get_root_service_info(session: Session, call: Call) -> Any:
    query = cluster_query(call.params, RS_QUERY)
    infos = _clusters_named(session, query)
    if query.wants_list:
        return [info.to_json() for info in infos]
    return primary(infos).to_json()


def _idc_region(info: RootServiceInfo) -> dict[str, Any]:
    """ob-configserver answers no IDCs: OBProxy then treats every server as in its own IDC."""
    return {
        "ObRegion": info.cluster,
        "ObRegionId": info.cluster_id,
        "IDCList": [],
        "ReadonlyRsList": "",
    }


def get_idc_region_info(session: Session, call: Call) -> Any:
    query = cluster_query(call.params, "parse ob idc region info query parameter")
    infos = _clusters_named(session, query)
    if query.wants_list:
        return [_idc_region(info) for info in infos]
    return _idc_region(primary(infos))


def post_root_service_info(session: Session, call: Call) -> Any:
    posted = registrations.bind(call.body)  # the body first, as ob-configserver checks it
    query = cluster_query(call.params, RS_QUERY)
    info = registrations.to_info(posted, query)
    registrations.check_not_recorded(session, info.cluster)
    registrations.save(session, info, call.policy.max_clusters)
    return "successful"


def delete_root_service_info(session: Session, call: Call) -> Any:
    query = cluster_query(call.params, RS_QUERY)
    if query.version < 2:
        raise illegal_argument("delete obcluster rs info is only supported when version >= 2")
    if query.cluster_id == 0:
        raise illegal_argument("delete obcluster rs info is only supported with obcluster id")
    registrations.check_not_recorded(session, query.name)
    registrations.forget(session, query.name, query.cluster_id)
    return "success"


def register(session: Session, call: Call) -> Any:
    """OCP's ObRootServiceRegister (`ObCluster`, `ObClusterId`), as OBD sends it."""
    query = cluster_query(call.params, "parse register parameter")
    if query.cluster_id <= 0:
        raise illegal_argument("ObClusterId must be a positive integer")
    registrations.reserve(session, query.name, query.cluster_id, call.policy.max_clusters)
    return "successful"


def delete_by_cluster_name(session: Session, call: Call) -> Any:
    """OCP's DeleteObRootServiceInfoByClusterName (`ClusterName`), as OBD sends it."""
    name = call.params.get("ClusterName", "")
    if not name:
        raise illegal_argument("ClusterName is required")
    registrations.check_not_recorded(session, name)
    registrations.forget(session, name)
    return "successful"


def _version_only(params: Mapping[str, str]) -> bool:
    text = params.get("VersionOnly")
    if text is None or text in FALSE:
        return False
    if text in TRUE:
        return True
    raise illegal_argument(f"invalid parameter, failed to parse versiononly: {text[:40]!r}")


def linked_cluster_names(session: Session, obproxy_cluster_name: str) -> list[str]:
    """The OceanBase clusters an OBProxy cluster links to (one outer-joined query, so that an
    unknown OBProxy cluster and one without links are told apart)."""
    rows = session.execute(
        select(ObproxyCluster.id, ObCluster.name)
        .outerjoin(ObproxyLink, ObproxyLink.obproxy_cluster_id == ObproxyCluster.id)
        .outerjoin(ObCluster, ObCluster.id == ObproxyLink.ob_cluster_id)
        .where(ObproxyCluster.name == obproxy_cluster_name)
    ).all()
    if not rows:
        raise not_found(f"no obproxy cluster named {obproxy_cluster_name}")
    return [name for _, name in rows if name is not None]


def _listed(session: Session, params: Mapping[str, str]) -> dict[str, list[RootServiceInfo]]:
    """The clusters an OBProxy config lists: those linked to ObproxyClusterName (OCP's
    configUrl), or, without it, every cluster known, as ob-configserver lists them."""
    obproxy_cluster_name = params.get("ObproxyClusterName")
    if not obproxy_cluster_name:
        return known(session)
    return known(session, linked_cluster_names(session, obproxy_cluster_name))


def get_proxy_config(session: Session, call: Call) -> Any:
    version_only = _version_only(call.params)
    config = proxyconfig.proxy_config(call.base_url, _listed(session, call.params))
    return {"Version": config["Version"]} if version_only else config


def get_url_template(session: Session, call: Call) -> Any:
    version_only = _version_only(call.params)
    template = proxyconfig.url_template(call.base_url, _listed(session, call.params))
    return {"Version": template["Version"]} if version_only else template


@dataclass(frozen=True)
class Action:
    run: Callable[[Session, Call], Any]
    writes: bool = False


ACTIONS: dict[str, dict[str, Action]] = {
    "GET": {
        "ObRootServiceInfo": Action(get_root_service_info),
        "GetObProxyConfig": Action(get_proxy_config),
        "GetObRootServiceInfoUrlTemplate": Action(get_url_template),
        "ObIDCRegionInfo": Action(get_idc_region_info),
    },
    "POST": {
        "ObRootServiceInfo": Action(post_root_service_info, writes=True),
        "GetObProxyConfig": Action(get_proxy_config),
        "GetObRootServiceInfoUrlTemplate": Action(get_url_template),
        "ObRootServiceRegister": Action(register, writes=True),
        "DeleteObRootServiceInfoByClusterName": Action(delete_by_cluster_name, writes=True),
    },
    "DELETE": {
        "ObRootServiceInfo": Action(delete_root_service_info, writes=True),
    },
}


def _encode(data: Any) -> Outcome:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Outcome(200, "successful", 200, text.encode())


def _failed(exc: ConfigServerError) -> Outcome:
    return Outcome(exc.code, exc.message, exc.http_status, b"null")


def _read(db: Database, action: Action, call: Call, staleness_s: float) -> Outcome:
    """A read action's answer, from the process's cache when the config-server generation is
    the one it was computed under. The generation is taken first (read on a bare connection,
    the cheapest query obfleet makes, or trusted without a read: obfleet.configserver.cache),
    the data after it, so an answer is never older than the generation it is kept under."""
    cache = cache_for(db)
    key = cache.key(call.base_url, call.params)

    def read_generation() -> int | None:
        with db.engine.connect() as conn:
            return GENERATION.read(conn)

    generation = cache.generation(read_generation, GENERATION.local, staleness_s)
    if generation is None:
        cache.stats.uncached += 1
    else:
        cached = cache.get(key, generation)
        if cached is not None:
            return cached
    with db.session() as session:
        try:
            outcome = _encode(action.run(session, call))
        except ConfigServerError as exc:
            outcome = _failed(exc)
    if generation is not None:
        cache.put(key, generation, outcome)
    return outcome


def _action(method: str, call: Call) -> Action | None:
    return ACTIONS.get(method, {}).get(call.params.get("Action", ""))


def answer_at_hand(db: Database, method: str, call: Call, *, staleness_s: float) -> Outcome | None:
    """The answer when giving it needs no I/O: a read action's, kept in the cache under a
    generation still trusted without a read. Else None: `answer`, in a worker thread."""
    action = _action(method, call)
    if action is None or action.writes:
        return None
    cache = cache_for(db)
    generation = cache.trusted(GENERATION.local, staleness_s)
    if generation is None:
        return None
    return cache.peek(cache.key(call.base_url, call.params), generation)


def answer(db: Database, method: str, call: Call, *, staleness_s: float) -> Outcome:
    """The answer to a call, errors included; a write action runs in one committed transaction
    (which moves the config-server generation when it changes anything), a read action is
    served from the cache while the generation stands, the generation being trusted without a
    metadb read for up to `staleness_s` after it was read (at once after this process moves
    it: obfleet.configserver.cache)."""
    action = _action(method, call)
    if action is None:
        return _failed(illegal_argument("invalid action"))
    if not action.writes:
        return _read(db, action, call, staleness_s)
    try:
        with db.transaction() as session:
            token = call.params.get(TOKEN_PARAM, "")
            check_writer(session, call.policy, call.client, token)
            return _encode(action.run(session, call))
    except ConfigServerError as exc:
        return _failed(exc)
