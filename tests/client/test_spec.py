"""The fleet file: its JSON Schema, errors that name the line, and OBD configs converted
(`import-obd`) into files that validate. No server is needed for any of this."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from obfleet.client import obd
from obfleet.client.spec import FleetSpec, SpecError, load

HERE = Path(__file__).parent

GOOD = """\
obClusters:
  - name: ob1
    obClusterId: 1
    rootServers: ["198.18.250.1:2882:2881:LEADER"]
    proxyroCredential: proxyro
hosts:
  - address: 198.18.0.2
    credential: root_key
obproxyClusters:
  - name: proxy1
    obClusters: [ob1]
    hosts: [198.18.0.2]
    version: 4.2.3.0-3
    startupParameters:
      enable_strict_kernel_release: false
    parameters:
      syslog_level: WARN
      client_max_connections: 4096
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obfleet", *args], capture_output=True, text=True, timeout=120
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_good_file_loads_with_parameter_values_as_text(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, GOOD))
    (cluster,) = fleet.obproxyClusters
    assert cluster.startupParameters == {"enable_strict_kernel_release": "false"}
    assert cluster.parameters == {"syslog_level": "WARN", "client_max_connections": "4096"}
    assert (cluster.mode, cluster.sqlPort, cluster.exporterPort) == ("CONFIG_URL", 2883, 2884)


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("    hosts: [198.18.0.2]\n", "    hosts: [198.18.0.2]\n    sqlport: 1\n", 13,
         "obproxyClusters.0.sqlport: Extra inputs are not permitted"),
        ("    obClusterId: 1\n", "    obClusterId: one\n", 3, "obClusters.0.obClusterId"),
        ("2882:2881:LEADER", "2882", 4, "is not ip:rpcPort:sqlPort"),
        ("    credential: root_key\n", "", 7, "hosts.0.credential: Field required"),
        ("  - name: proxy1\n", "  - name: proxy 1\n", 10, "obproxyClusters.0.name"),
    ],
)  # fmt: skip
def test_errors_name_the_line(tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    with pytest.raises(SpecError) as caught:
        load(write(tmp_path, GOOD.replace(old, new)))
    assert f"fleet.yaml:{line}: " in str(caught.value), str(caught.value)
    assert words in str(caught.value)


def test_apply_prints_its_schema_and_refuses_a_bad_file(tmp_path: Path) -> None:
    r = run("apply", "--schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert schema == FleetSpec.model_json_schema()
    assert {"obClusters", "hosts", "obproxyClusters"} <= set(schema["properties"])
    bad = run("apply", "-f", str(write(tmp_path, GOOD.replace("obClusterId: 1", "obClusterId: x"))))
    assert bad.returncode == 1 and "fleet.yaml:3:" in bad.stderr


def test_import_obd_rs_list_config() -> None:
    r = run("import-obd", str(HERE / "obd" / "obproxy-only.yaml"))
    assert r.returncode == 0, r.stderr
    fleet = yaml.safe_load(r.stdout)
    FleetSpec.model_validate(fleet)
    assert fleet["obClusters"] == [
        {
            "name": "prod_ob",
            "obClusterId": 1,
            "rootServers": ["198.18.20.1:2882:2881:LEADER", "198.18.20.2:2882:2881:FOLLOWER"],
            "proxyroCredential": "proxyro",
        }
    ]
    assert fleet["hosts"] == [
        {"address": "198.18.10.1", "credential": "obd-ssh", "sshPort": 2222},
        {"address": "198.18.10.2", "credential": "obd-ssh", "sshPort": 2222},
    ]
    (cluster,) = fleet["obproxyClusters"]
    assert cluster == {
        "name": "obproxy-ce",
        "mode": "RS_LIST",
        "obClusters": ["prod_ob"],
        "hosts": ["198.18.10.1", "198.18.10.2"],
        "sqlPort": 3883,
        "exporterPort": 3884,
        "version": "4.2.3.0-3",
        "startupParameters": {
            "enable_cluster_checkout": "false",
            "enable_strict_kernel_release": "false",
        },
        "parameters": {"syslog_level": "WARN", "proxy_mem_limited": "2G"},
    }
    assert "Not_copied" not in r.stdout + r.stderr  # secrets stay behind
    assert "proxy-b: syslog_level='DEBUG' differs" in r.stderr
    assert "obproxy_sys_password is a secret" in r.stderr


def test_import_obd_with_depends() -> None:
    config = yaml.safe_load((HERE / "obd" / "with-depends.yaml").read_text())
    fleet, notes = obd.convert(config)
    FleetSpec.model_validate(fleet)
    assert fleet["obClusters"] == [
        {
            "name": "obcluster7",
            "obClusterId": 7,
            "rootServers": ["198.18.30.1:2882:2881:LEADER", "198.18.30.2:3882:3881:FOLLOWER"],
            "proxyroCredential": "proxyro",
            "obVersion": "4.2.1.0",
        }
    ]
    (cluster,) = fleet["obproxyClusters"]
    assert cluster["mode"] == "CONFIG_URL" and cluster["obClusters"] == ["obcluster7"]
    assert cluster["parameters"] == {"client_max_connections": "4096"}
    assert fleet["hosts"][0]["sshPort"] == 22
    assert not any("Not_copied" in n for n in notes)


def test_import_obd_refuses_a_config_without_obproxy(tmp_path: Path) -> None:
    with pytest.raises(obd.ObdError, match="no obproxy component"):
        obd.convert({"oceanbase-ce": {"servers": ["198.18.30.1"]}})
    path = tmp_path / "c.yaml"
    path.write_text("obproxy-ce:\n  global: {}\n")
    r = run("import-obd", str(path))
    assert r.returncode == 1 and "has no servers" in r.stderr
