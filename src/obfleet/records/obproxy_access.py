"""What an OBProxy task needs from the metadb to reach and start one OBProxy: the cluster's
root@proxysys password, the proxyro password of its links, where it finds its OceanBase
clusters (RS list or config URL), its start command line, and, for a take-over, what the
cluster expects of the OBProxy and the passwords to try on it. Read afresh by every step, since
links, credentials and parameters may change while a task waits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.config import Settings
from obfleet.obproxy import cmdline, discovery
from obfleet.obproxy.admin import ProxysysClient
from obfleet.obproxy.adoption import Expected
from obfleet.obproxy.configurl import config_url
from obfleet.obproxy.parameter_lists import StartParameters
from obfleet.records import credentials, ob_clusters
from obfleet.records import obproxy as records
from obfleet.records.ob_clusters import root_servers
from obfleet.records.obproxy import Placement, RecordError
from obfleet.security.secrets import SecretBox
from obfleet.store.models.obproxy import ObproxyCluster


def proxyro_password(session: Session, box: SecretBox, cluster_id: int) -> str | None:
    """The one proxyro password of the clusters behind this OBProxy cluster (checked up front
    as well; checked again, since links and credentials may have changed since); None when
    it links none (a CONFIG_URL cluster may start with none)."""
    cluster = records.get(session, cluster_id)
    linked = ob_clusters.linked(session, cluster)
    if not linked:
        return None
    found = ob_clusters.proxyro_passwords(session, box, linked)
    values = set(found.values())
    password = values.pop() if len(values) == 1 else None
    if password is None:
        raise RecordError(
            f"the OceanBase clusters of {cluster.name} ({', '.join(found) or 'none'}) must all "
            "have the same proxyro credential"
        )
    return password


def proxysys(session: Session, box: SecretBox, placement: Placement) -> ProxysysClient:
    """A root@proxysys client of the OBProxy at `placement`, with its cluster's password."""
    cluster = records.get(session, placement.cluster_id)
    if cluster.proxysys_credential_id is None:
        raise RecordError(f"OBProxy cluster {cluster.name} has no root@proxysys credential")
    password = credentials.reveal(session, box, cluster.proxysys_credential_id).secret
    return ProxysysClient(placement.ip, placement.sql_port, password)


def upstream(
    session: Session, settings: Settings, cluster: ObproxyCluster
) -> cmdline.RsList | cmdline.ConfigUrl:
    if cluster.work_mode == "RS_LIST":
        (ob,) = ob_clusters.linked(session, cluster)
        return cmdline.RsList(ob.name, tuple(f"{s.ip}:{s.sql_port}" for s in root_servers(ob)))
    if not settings.advertise_url:
        raise RecordError(
            "CONFIG_URL mode needs OBFLEET_ADVERTISE_URL: the URL OBProxy reads its clusters from"
        )
    return cmdline.ConfigUrl(config_url(settings.advertise_url, cluster.name))


def start_spec(
    session: Session,
    box: SecretBox,
    settings: Settings,
    placement: Placement,
    parameters: StartParameters | None = None,
) -> cmdline.StartSpec:
    """The command line of the OBProxy at `placement`: the cluster's recorded startup
    parameters unless `parameters` says otherwise."""
    cluster = records.get(session, placement.cluster_id)
    if parameters is None:
        parameters = StartParameters(
            tuple((p["name"], p["value"]) for p in cluster.startup_parameters),
            frozenset(p["name"] for p in cluster.parameters),
        )
    return cmdline.StartSpec(
        home=placement.home,
        sql_port=placement.sql_port,
        exporter_port=placement.exporter_port,
        app_name=cluster.name,
        proxysys_password=proxysys(session, box, placement).password,
        run_user=cluster.run_user,
        upstream=upstream(session, settings, cluster),
        startup_parameters=parameters.startup,
        runtime_names=parameters.runtime_names,
    )


# --- a take-over --------------------------------------------------------------------------------


def expected(session: Session, settings: Settings, cluster_id: int, sql_port: int) -> Expected:
    """What an OBProxy must be to join the cluster (obproxy/adoption.judge)."""
    cluster = records.get(session, cluster_id)
    advertise = settings.advertise_url
    return Expected(
        cluster_name=cluster.name,
        work_mode=cluster.work_mode,
        sql_port=sql_port,
        ob_clusters={
            ob.name: [f"{s.ip}:{s.sql_port}" for s in root_servers(ob)]
            for ob in ob_clusters.linked(session, cluster)
        },
        services_url=f"{advertise.rstrip('/')}/services" if advertise else None,
    )


def passwords_to_try(
    session: Session, box: SecretBox, cluster_id: int, credential_id: int | None
) -> list[tuple[str, str]]:
    """The passwords to try for root@proxysys, in order, by source (obproxy/discovery): the
    cluster's, the given OBPROXY credential's, an empty one."""
    cluster = records.get(session, cluster_id)
    found: list[tuple[str, str]] = []
    if cluster.proxysys_credential_id is not None:
        found.append(
            (
                discovery.CLUSTER,
                credentials.reveal(session, box, cluster.proxysys_credential_id).secret,
            )
        )
    if credential_id is not None:
        credentials.get(session, credential_id, "OBPROXY")
        found.append((discovery.CREDENTIAL, credentials.reveal(session, box, credential_id).secret))
    found.append((discovery.EMPTY, ""))
    return found
