"""Whether an OBProxy found running can be taken over: its install path judged from the
process (`home_of`), and whether it belongs to an OBProxy cluster judged from its config
(`judge`). Pure: the process as /proc shows it, the config as `show proxyconfig` gives it, and
what the cluster expects."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from obfleet.hosts.processes import ProcessFacts
from obfleet.hosts.shell import safe_path


class NotAdoptable(RuntimeError):
    """The process cannot be taken over as it runs; the message says what to do."""


def home_of(facts: ProcessFacts, where: str) -> str:
    """The install path of the OBProxy process, or why it has none obfleet can use."""
    if not facts.cwd or not facts.exe:
        raise NotAdoptable(
            f"obfleet, connected as {facts.me}, cannot look into pid {facts.pid} on {where} "
            f"(it runs as {facts.user or 'another user'}): connect obfleet to the host as root "
            f"or as {facts.user or 'that user'}, then retry"
        )
    if facts.me != "root" and facts.user != facts.me:
        raise NotAdoptable(
            f"pid {facts.pid} on {where} runs as {facts.user}, but obfleet connects as "
            f"{facts.me} and could not stop or restart it later: restart the OBProxy as "
            f"{facts.me} (from its install path), or connect obfleet as root or {facts.user}, "
            "then retry"
        )
    program = facts.program("obproxy")
    if program is None:
        raise NotAdoptable(
            f"pid {facts.pid} listening on {where} is not OBProxy: it runs {facts.args_text!r}, "
            "not a bin/obproxy. Give the SQL port of the OBProxy to take over (its "
            "listen_port), then retry"
        )
    if facts.exe.endswith(" (deleted)"):
        raise NotAdoptable(
            f"the binary of pid {facts.pid} on {where} ({program}) was deleted or replaced "
            "after it started (upgraded in place?): restart the OBProxy, then retry"
        )
    home = posixpath.dirname(posixpath.dirname(program))
    if home != facts.cwd:
        raise NotAdoptable(
            f"pid {facts.pid} on {where} runs {program} from the working directory "
            f"{facts.cwd}; OBProxy keeps etc/, log/ and run/ under its working directory and "
            f"obfleet tells an OBProxy by it: restart it from its install path "
            f"(cd {home} && ./bin/obproxy), then retry"
        )
    try:
        return safe_path(home)
    except ValueError as exc:
        raise NotAdoptable(f"the install path {home!r} on {where} cannot be used: {exc}") from None


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
