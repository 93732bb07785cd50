"""The plan `apply` makes from a fleet file and obfleet's state (as the API shows it): what
changes, in which order, and what is refused before anything is submitted. The end-to-end
runs are in test_fleet.py; these cover the cases that need no hosts."""

from __future__ import annotations

from typing import Any

import pytest

from obfleet.client.plan import PlanError, State, plan
from obfleet.client.spec import FleetSpec

PACKAGE = {
    "id": 1,
    "name": "obproxy-ce",
    "version": "4.2.3.0",
    "buildNumber": "3",
    "fileName": "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm",
}


def obproxy(i: int, ip: str, version: str = "4.2.3.0-3") -> dict[str, Any]:
    return {"id": i, "ip": ip, "sqlPort": 2883, "version": version, "status": "RUNNING"}


def state(**clusters: dict[str, Any]) -> State:
    return State(
        ob_clusters={n: {"name": n, "obClusterId": i} for i, n in enumerate(("ob1", "ob2"), 1)},
        hosts={ip: {"id": i, "innerIpAddress": ip} for i, ip in enumerate(("h1", "h2", "h3"))},
        credentials={
            "root_key": {"id": 1, "name": "root_key", "targetType": "HOST"},
            "proxyro": {"id": 2, "name": "proxyro", "targetType": "OB_CLUSTER"},
        },
        packages=[PACKAGE],
        clusters=clusters,
        parameters={name: {"syslog_level": "WARN"} for name in clusters},
    )


def fleet(**cluster: Any) -> FleetSpec:
    spec = {
        "name": "p1",
        "obClusters": ["ob1"],
        "hosts": ["h1"],
        "version": "4.2.3.0-3",
        "parameters": {"syslog_level": "WARN"},
    }
    return FleetSpec.model_validate({"obproxyClusters": [{**spec, **cluster}]})


EXISTING = {
    "id": 5,
    "name": "p1",
    "obLinks": [{"clusterName": "ob1"}, {"clusterName": "ob2"}],
    "obproxies": [obproxy(10, "h1"), obproxy(11, "h2")],
}


def texts(changes: list[Any]) -> list[str]:
    return [c.text for c in changes]


def test_removals_wait_for_prune() -> None:
    assert plan(fleet(), state(p1=EXISTING), prune=False) == []
    assert texts(plan(fleet(), state(p1=EXISTING), prune=True)) == [
        "delete obproxies of p1 on h2",
        "unlink p1 from ob2",
    ]
    others = state(p1=EXISTING, gone={"id": 6, "name": "gone", "obLinks": [], "obproxies": []})
    assert texts(plan(fleet(hosts=["h1", "h2"], obClusters=["ob1", "ob2"]), others, True)) == [
        "delete OBProxy cluster gone"
    ]


def test_one_change_per_kind_in_order() -> None:
    wanted = fleet(
        hosts=["h1", "h2", "h3"],
        obClusters=["ob1", "ob2"],
        parameters={"syslog_level": "INFO"},
        startupParameters={"proxy_id": "3"},
    )
    old = {
        **EXISTING,
        "obLinks": [{"clusterName": "ob1"}],
        "obproxies": [obproxy(10, "h1", "4.2.2.0-1"), obproxy(11, "h2")],
    }
    changes = plan(wanted, state(p1=old), prune=False)
    assert [c.kind for c in changes] == ["add", "link", "parameters", "upgrade"]
    assert changes[2].text == "set parameters of p1: proxy_id=3, syslog_level=INFO"
    assert changes[3].text == "upgrade p1 to 4.2.3.0-3 on h1 (4.2.2.0-1)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"obClusters": ["ob9"]}, "no OceanBase cluster 'ob9'"),
        ({"hosts": ["h9"]}, "no host h9"),
        ({"version": "9.9.9.9-1"}, "no uploaded OBProxy package 9.9.9.9-1 (uploaded: 4.2.3.0-3)"),
    ],
)
def test_refused_before_anything_is_submitted(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(fleet(**spec), state(), prune=False)


def test_new_hosts_need_a_host_credential() -> None:
    wanted = FleetSpec.model_validate(
        {
            "hosts": [
                {"address": "h7", "credential": "proxyro"},
                {"address": "h1", "credential": "x"},
            ]
        }
    )
    with pytest.raises(PlanError, match="no HOST credential 'proxyro'"):
        plan(wanted, state(), prune=False)
    ok = FleetSpec.model_validate({"hosts": [{"address": "h7", "credential": "root_key"}]})
    assert texts(plan(ok, state(), prune=False)) == ["add hosts h7"]


def build(version: str, number: str, arch: str = "x86_64") -> dict[str, Any]:
    release = f"{number}.el7"
    file_name = f"obproxy-ce-{version}-{release}.{arch}.rpm"
    return {
        **PACKAGE,
        "version": version,
        "buildNumber": release,
        "fileName": file_name,
        "architecture": arch,
    }


UPLOADED = [build("4.2.3.0", "3"), build("4.2.3.0", "10"), build("4.2.2.0", "99")]


def with_packages(packages: list[dict[str, Any]], **clusters: dict[str, Any]) -> State:
    now = state(**clusters)
    now.packages = packages
    for host in now.hosts.values():
        host["architecture"] = "aarch64"
    return now


def test_without_a_version_installs_the_newest_upload() -> None:
    """Newest by version, then by build as a number (10 after 3); of that build's packages,
    the one for the hosts' architecture."""
    packages = [*UPLOADED, build("4.2.3.0", "10", "aarch64")]
    (create,) = plan(fleet(version=None), with_packages(packages), prune=False)
    assert create.text == (
        "create OBProxy cluster p1 on h1 with obproxy-ce-4.2.3.0-10.el7.aarch64.rpm"
    )
    old = {**EXISTING, "obproxies": [obproxy(10, "h1", "4.2.2.0-1"), obproxy(11, "h2")]}
    wanted = fleet(version=None, hosts=["h1", "h2", "h3"], obClusters=["ob1", "ob2"])
    assert texts(plan(wanted, with_packages(UPLOADED, p1=old), prune=False)) == [
        "add obproxies to p1 on h3 with obproxy-ce-4.2.3.0-10.el7.x86_64.rpm"
    ]  # and no upgrade: obproxies keep the version they run when none is pinned


def test_without_a_version_or_an_upload_nothing_can_be_installed() -> None:
    with pytest.raises(PlanError, match="p1: no OBProxy package is uploaded: upload one"):
        plan(fleet(version=None), with_packages([]), prune=False)
    with pytest.raises(PlanError, match="p1: no OBProxy package is uploaded"):
        plan(fleet(version=None, hosts=["h1", "h3"]), with_packages([], p1=EXISTING), False)
    assert plan(fleet(version=None, hosts=["h1", "h2"], obClusters=["ob1", "ob2"]),
                with_packages([], p1=EXISTING), prune=False) == []  # fmt: skip


def test_the_newest_upload_for_hosts_the_same_apply_adds() -> None:
    wanted = FleetSpec.model_validate(
        {
            "hosts": [{"address": "h7", "credential": "root_key"}],
            "obproxyClusters": [{"name": "p1", "obClusters": ["ob1"], "hosts": ["h7"]}],
        }
    )
    assert texts(plan(wanted, with_packages(UPLOADED), prune=False)) == [
        "add hosts h7",
        "create OBProxy cluster p1 on h7 with obproxy-ce-4.2.3.0-10.el7.x86_64.rpm",
    ]
