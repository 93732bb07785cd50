"""Resource commands against a real `obfleet serve` (no hosts needed): packages uploaded (also
signed with an access key, the multipart body's MD5 in the signature), credentials, OceanBase
cluster records, refusals as messages with OCP's codes and exit codes, one JSON document on
stdout with `-o json`, and `--help` that teaches with an example for every client command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from obfleet.cli import app
from obfleet.client.cli import SUB_APPS
from tests.client.conftest import Client
from tests.client.test_login import create_access_key
from tests.server import ServerProcess, free_port
from tests.standin.rpm import build_standin_rpm
from tests.support.sshkeys import make_key

TOP_LEVEL = ("login", "logout", "apply", "diff", "import-obd")


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    return build_standin_rpm(tmp_path_factory.mktemp("rpm"), version="4.2.3.0", release="3.el7")


def client_commands() -> dict[str, Any]:
    """The client's commands by their command line (Typer's groups: `.commands` by name)."""
    root: Any = typer.main.get_command(app)
    found = {name: root.commands[name] for name in TOP_LEVEL}
    for group_name in SUB_APPS:
        group = root.commands[group_name]
        found |= {f"{group_name} {n}": c for n, c in group.commands.items()}
    return found


def test_every_client_command_has_an_example() -> None:
    commands = client_commands()
    assert {"cluster set-param", "task watch", "obproxy takeover", "package upload"} <= set(
        commands
    )
    missing = [name for name, cmd in commands.items() if "Example: obfleet" not in (cmd.help or "")]
    assert missing == []


def test_packages_uploaded_listed_and_deleted_with_an_access_key(
    server: ServerProcess, tmp_path: Path, database_url: str, rpm: Path
) -> None:
    access_key, secret = create_access_key(server, database_url)
    client = Client(
        tmp_path / "config",
        {
            "OBFLEET_URL": server.url,
            "OBFLEET_ACCESS_KEY_ID": access_key,
            "OBFLEET_ACCESS_KEY_SECRET": secret,
        },
    )
    r = client("package", "upload", str(rpm), "-o", "json")
    assert r.returncode == 0, r.stderr
    uploaded = json.loads(r.stdout)
    assert (uploaded["fileName"], uploaded["version"]) == (rpm.name, "4.2.3.0")
    assert uploaded["size"] == rpm.stat().st_size
    r = client("package", "list", "-o", "yaml")
    assert [p["fileName"] for p in yaml.safe_load(r.stdout)] == [rpm.name]
    table = client("package", "list")
    assert rpm.name in table.stdout and "fileName" in table.stdout
    assert client("package", "delete", rpm.name).returncode == 0
    assert json.loads(client("package", "list", "-o", "json").stdout) == []


def test_credentials_and_ob_clusters(obfleet: Client, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(make_key(tmp_path, "ed25519", None).private)
    r = obfleet("credential", "add", "root_key", "--type", "HOST", "--username", "root",
                "--private-key-file", str(key), "-o", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["authType"] == "PRIVATE_KEY"
    no_tty = obfleet("credential", "add", "pw", "--type", "OB_CLUSTER", "--username", "proxyro")
    assert no_tty.returncode == 2 and "no terminal" in no_tty.stderr

    r = obfleet("ob", "import", "ob1", "--ob-cluster-id", "3", "--root-server",
                "198.18.250.1:2882:2881:LEADER", "--proxyro-password-stdin",
                input="Proxyro_pw_1\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (ob,) = json.loads(obfleet("ob", "list", "-o", "json").stdout)
    assert (ob["name"], ob["obClusterId"], ob["rootServers"][0]["address"]) == (
        "ob1",
        3,
        "198.18.250.1:2882",
    )
    assert "Proxyro_pw_1" not in json.dumps(ob)
    bad = obfleet("ob", "import", "ob2", "--ob-cluster-id", "4", "--root-server", "nonsense",
                  "--proxyro-password-stdin", input="x\n")  # fmt: skip
    assert bad.returncode == 2 and "ip:rpcPort:sqlPort" in bad.stderr

    assert obfleet("credential", "delete", "root_key").returncode == 0
    names = [c["name"] for c in json.loads(obfleet("credential", "list", "-o", "json").stdout)]
    assert "root_key" not in names  # (the import made one for proxyro: it stays)


def test_refusals_are_messages_with_exit_codes(obfleet: Client) -> None:
    unknown = obfleet("cluster", "show", "nope")
    assert unknown.returncode == 1 and "no OBProxy cluster 'nope'" in unknown.stderr
    task = obfleet("task", "show", "999")
    assert task.returncode == 1 and "4001" in task.stderr and "HTTP 404" in task.stderr
    obfleet("ob", "import", "ob1", "--ob-cluster-id", "1", "--root-server",
            "198.18.250.1:2882:2881", "--proxyro-password-stdin", input="Pw_12345\n")  # fmt: skip
    no_host = obfleet("cluster", "create", "p1", "--ob-cluster", "ob1", "--host", "198.18.9.9")
    assert no_host.returncode == 1 and "no host '198.18.9.9'" in no_host.stderr
    away = obfleet("task", "list", env={"OBFLEET_URL": f"http://127.0.0.1:{free_port()}"})
    assert away.returncode == 3 and "cannot reach" in away.stderr
    empty = obfleet("cluster", "list", "-o", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_cluster_create_without_a_version_names_the_newest_upload(
    obfleet: Client, tmp_path: Path, rpm: Path
) -> None:
    """The server needs the package and ports named; the client names the newest upload and
    the default ports, and says what to do when nothing is uploaded."""
    key = tmp_path / "key"
    key.write_text(make_key(tmp_path, "ed25519", None).private)
    obfleet("credential", "add", "root_key", "--type", "HOST", "--username", "root",
            "--private-key-file", str(key))  # fmt: skip
    obfleet("ob", "import", "ob1", "--ob-cluster-id", "1", "--root-server",
            "198.18.250.1:2882:2881", "--proxyro-password-stdin", input="Pw_12345\n")  # fmt: skip
    # Nothing listens on the port: the host is recorded, its preparation fails at once.
    r = obfleet("host", "add", "127.0.0.1", "--credential", "root_key",
                "--ssh-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr
    create = ("cluster", "create", "p1", "--ob-cluster", "ob1", "--host", "127.0.0.1", "-o", "json")
    none = obfleet(*create)
    assert none.returncode == 1 and "no OBProxy package is uploaded: upload one" in none.stderr
    assert json.loads(obfleet("cluster", "list", "-o", "json").stdout) == []

    # With a package uploaded the server takes the install (ports, package) and refuses only
    # what it checks next: the host, offline here (the end-to-end installs are test_fleet.py's).
    assert obfleet("package", "upload", str(rpm)).returncode == 0
    named = obfleet(*create)
    assert named.returncode == 1 and "OFFLINE; obproxies are installed on ONLINE" in named.stderr
