"""The OBProxy start command line: its flags, passwords as SHA1 hex, RS_LIST against CONFIG_URL,
and quoting that lets no value run anything (proved by running it under /bin/sh)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from obfleet.obproxy.cmdline import (
    ConfigUrl,
    RsList,
    StartSpec,
    argv,
    sha1_hex,
    start_command,
    version_command,
)
from tests.standin.obproxy import stage1_hex

PASSWORD = "Sys pw 'quoted' $(x)"
HOME = "/home/admin/obproxy-4.2.3.0"
URL = "http://198.18.0.1:8080/services?Action=GetObProxyConfig&ObproxyClusterName=pc1"


def spec(**changes: Any) -> StartSpec:
    base = StartSpec(
        home=HOME,
        sql_port=2883,
        exporter_port=2884,
        app_name="pc1",
        proxysys_password=PASSWORD,
        upstream=RsList("ob1", ("198.18.0.11:2881", "198.18.0.12:2881")),
        startup_parameters=[("enable_strict_kernel_release", "false")],
    )
    return dataclasses.replace(base, **changes)


def hex_of(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest()


def test_rs_list_command_line() -> None:
    assert argv(spec()) == [
        "./bin/obproxy",
        *("-p", "2883", "-l", "2884", "-n", "pc1"),
        "-o",
        "enable_strict_kernel_release=false,enable_metadb_used=false,"
        f"skip_proxy_sys_private_check=true,obproxy_sys_password={hex_of(PASSWORD)}",
        *("-r", "198.18.0.11:2881;198.18.0.12:2881", "-c", "ob1"),
    ]


def test_config_url_command_line_has_the_url_and_no_rs_list() -> None:
    args = argv(spec(upstream=ConfigUrl(URL), startup_parameters=[]))
    assert args == [
        "./bin/obproxy",
        *("-p", "2883", "-l", "2884", "-n", "pc1"),
        "-o",
        "enable_metadb_used=false,skip_proxy_sys_private_check=true,"
        f"obproxy_config_server_url={URL},obproxy_sys_password={hex_of(PASSWORD)}",
    ]


def test_passwords_are_sha1_hex_as_obproxy_stores_them() -> None:
    assert sha1_hex("secret") == "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"
    assert sha1_hex(PASSWORD) == stage1_hex(PASSWORD)
    assert PASSWORD not in start_command(spec())


def test_the_operator_overrides_obfleets_defaults() -> None:
    custom = spec(
        startup_parameters=[("enable_metadb_used", "true")],
        runtime_names=frozenset({"skip_proxy_sys_private_check"}),
    )
    options = argv(custom)[argv(custom).index("-o") + 1]
    assert options == f"enable_metadb_used=true,obproxy_sys_password={hex_of(PASSWORD)}"


def test_the_shell_runs_exactly_that_argv_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "obproxy-4.2.3.0"
    (home / "bin").mkdir(parents=True)
    fake = home / "bin" / "obproxy"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > args\nprintf "%s" "$LD_LIBRARY_PATH" > ld\n')
    fake.chmod(0o755)
    canary = tmp_path / "canary"
    hostile = spec(
        home=str(home),
        app_name=f"pc1;touch {canary}",
        startup_parameters=[("proxy_idc_name", f"$(touch {canary})|x&&touch {canary}")],
        upstream=RsList(f"ob1$(touch {canary})", ("h:1",)),
    )
    subprocess.run(["/bin/sh", "-c", start_command(hostile)], check=True, timeout=30)
    assert not canary.exists()
    assert (home / "args").read_text().splitlines() == argv(hostile)[1:]
    assert (home / "ld").read_text() == f"{home}/lib"


def test_version_command_runs_from_the_home() -> None:
    assert version_command(HOME) == (f"cd {HOME} && LD_LIBRARY_PATH={HOME}/lib ./bin/obproxy -V")


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"startup_parameters": [("proxy_idc_name", "a,b")]}, "-o"),
        ({"startup_parameters": [("proxy_idc_name", "it's")]}, "-o"),
        ({"startup_parameters": [("Bad-Name", "1")]}, "parameter name"),
        ({"startup_parameters": [("obproxy_sys_password", "x")]}, "set by obfleet"),
        ({"upstream": ConfigUrl("http://h/a,b")}, "-o"),
        ({"upstream": RsList("ob1", ())}, "at least one root server"),
        ({"upstream": RsList("ob1", ("1.2.3.4:2881;5.6.7.8:2881",))}, "ip:sql_port"),
        ({"upstream": RsList("ob,1", ("1.2.3.4:2881",))}, "cluster name"),
        ({"app_name": "pc'1"}, "app name"),
        ({"sql_port": 2884}, "must differ"),
        ({"sql_port": 80}, "sqlPort 80"),
        ({"home": "/home/admin/../etc"}, "'..'"),
    ],
)
def test_values_that_would_break_the_command_line_are_refused(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        start_command(spec(**changes))
