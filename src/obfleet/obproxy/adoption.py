"""Whether an OBProxy found running belongs to an OBProxy cluster: what Take over obproxy
judges from its config before it records it. Pure: the config as `show proxyconfig` gives it,
and what the cluster expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Expected:
    """What an OBProxy of this cluster looks like."""

    cluster_name: str
    work_mode: str
    sql_port: int
    ob_clusters: Mapping[str, Sequence[str]]  # linked OceanBase cluster -> ip:sql_port each
    services_url: str | None = None  # obfleet's own config server (advertise URL + /services)


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exporter_port: int | None = None


def judge(config: Mapping[str, str], expected: Expected) -> Verdict:
    """Problems that keep this OBProxy out of the cluster (each says what to do), and notes."""
    verdict = Verdict()
    name = expected.cluster_name
    app = config.get("app_name", "")
    if app != name:
        verdict.problems.append(
            f"its app name is {app or '(none)'!r}, but obfleet starts every OBProxy of OBProxy "
            f"cluster {name} with the app name {name!r}: take it over with an OBProxy cluster "
            f"named {app!r} (create an empty one with the same work mode and connectable "
            "OceanBase clusters)"
        )
    url = config.get("obproxy_config_server_url", "")
    rs_list = config.get("rootservice_list", "")
    mode = "CONFIG_URL" if url else "RS_LIST" if rs_list else None
    if mode is None:
        verdict.problems.append(
            "it has neither obproxy_config_server_url nor rootservice_list, so it can reach no "
            "OceanBase cluster: configure the cluster it serves on it first, then retry"
        )
    elif mode != expected.work_mode:
        verdict.problems.append(
            f"it works in {mode} mode, but OBProxy cluster {name} works in {expected.work_mode} "
            f"mode: take it over with an OBProxy cluster in {mode} mode (create an empty one "
            "with the same connectable OceanBase clusters)"
        )
    elif mode == "RS_LIST":
        _judge_rs_list(config, expected, rs_list, verdict)
    else:
        _judge_config_url(expected, url, verdict)
    exporter = config.get("prometheus_listen_port", "")
    if exporter.isdigit() and 1024 < int(exporter) < 65536 and int(exporter) != expected.sql_port:
        verdict.exporter_port = int(exporter)
    else:
        verdict.problems.append(f"its prometheus_listen_port {exporter!r} is not a usable port")
    return verdict


def _judge_rs_list(
    config: Mapping[str, str], expected: Expected, rs_list: str, verdict: Verdict
) -> None:
    ob_name = config.get("rootservice_cluster_name", "") or config.get("cluster_name", "")
    linked = ", ".join(expected.ob_clusters) or "none"
    servers = expected.ob_clusters.get(ob_name)
    if servers is None:
        verdict.problems.append(
            f"it connects to OceanBase cluster {ob_name or '(unnamed)'!r}, but OBProxy cluster "
            f"{expected.cluster_name} connects to {linked}: in RS_LIST mode they must be the "
            "same; take it over with an OBProxy cluster linked to that OceanBase cluster"
        )
        return
    given = {s.strip() for s in rs_list.split(";") if s.strip()}
    if not given & set(servers):
        verdict.problems.append(
            f"its rootservice_list {rs_list} shares no root server with OceanBase cluster "
            f"{ob_name} as obfleet records it ({';'.join(servers)}): correct the record of "
            f"{ob_name} (or the OBProxy's rootservice_list), then retry"
        )
    elif given != set(servers):
        verdict.notes.append(
            f"its rootservice_list {rs_list} differs from the root servers obfleet records for "
            f"{ob_name} ({';'.join(servers)}); obfleet's list is used at its next start"
        )


def _judge_config_url(expected: Expected, url: str, verdict: Verdict) -> None:
    own = expected.services_url
    if own and url.startswith(own):
        names = parse_qs(urlsplit(url).query).get("ObproxyClusterName", [])
        if names and names[0] != expected.cluster_name:
            verdict.problems.append(
                f"it reads the clusters of OBProxy cluster {names[0]} from obfleet ({url}): "
                f"take it over with that OBProxy cluster"
            )
        return
    verdict.notes.append(
        f"it reads its OceanBase clusters from {url}, not from obfleet; obfleet's config URL "
        "is used from its next start (restart or upgrade)"
    )
