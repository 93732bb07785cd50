"""Connection profiles against a real `obfleet serve`: login stores a 0600 profile and never
echoes the secret, a wrong password stores nothing, an access-key profile signs its requests
(AK/SK), environment variables work without a file, and secrets on argv are refused."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

from tests.client.conftest import Client
from tests.conftest import ADMIN_PASSWORD
from tests.server import SECRET_KEY, ServerProcess


def profiles_file(client: Client) -> Path:
    return client.config_home / "obfleet" / "profiles.json"


def test_login_stores_a_private_profile_and_never_echoes_the_password(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = Client(tmp_path / "config", {})
    r = client("login", "--url", server.url, "--user", "admin", "--password-stdin",
               input=ADMIN_PASSWORD + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert ADMIN_PASSWORD not in r.stdout + r.stderr
    path = profiles_file(client)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["default"]["url"] == server.url
    listing = client("credential", "list", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == []

    # A second, named profile; the default one is untouched; logout forgets only it.
    password_file = tmp_path / "pw"
    password_file.write_text(ADMIN_PASSWORD)
    r = client("login", "--url", server.url, "--user", "admin", "--password-file",
               str(password_file), "--profile", "other")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert client("task", "list", "--profile", "other").returncode == 0
    assert client("logout", "--profile", "other").returncode == 0
    assert set(json.loads(profiles_file(client).read_text())) == {"default"}
    missing = client("task", "list", "--profile", "other")
    assert missing.returncode == 3 and "no profile 'other'" in missing.stderr


def test_wrong_password_is_refused_and_nothing_is_stored(
    server: ServerProcess, tmp_path: Path
) -> None:
    client = Client(tmp_path / "config", {})
    r = client("login", "--url", server.url, "--user", "admin", "--password-stdin",
               input="Wrong_pass_123\n")  # fmt: skip
    assert r.returncode == 1 and "login refused" in r.stderr
    assert not profiles_file(client).exists()
    no_profile = client("task", "list")
    assert no_profile.returncode == 3 and "obfleet login" in no_profile.stderr


def test_secrets_on_argv_are_refused(server: ServerProcess, tmp_path: Path) -> None:
    client = Client(tmp_path / "config", {})
    r = client("login", "--url", server.url, "--user", "admin", "--password", ADMIN_PASSWORD)
    assert r.returncode == 2 and "not taken from the command line" in r.stderr
    assert not profiles_file(client).exists()
    env_client = Client(
        tmp_path / "config",
        {"OBFLEET_URL": server.url, "OBFLEET_USER": "admin", "OBFLEET_PASSWORD": ADMIN_PASSWORD},
    )
    for argv in (
        ["credential", "add", "c1", "--type", "HOST", "--username", "root", "--password", "Pw_1"],
        ["credential", "add", "c1", "--type", "HOST", "--username", "root", "--private-key", "k"],
        ["login", "--url", server.url, "--access-key-id", "AK", "--access-key-secret", "SK"],
    ):
        r = env_client(*argv)
        assert r.returncode == 2 and "not taken from the command line" in r.stderr, argv
    listing = env_client("credential", "list", "-o", "json")
    assert json.loads(listing.stdout) == []  # nothing was created


def create_access_key(server: ServerProcess, database_url: str) -> tuple[str, str]:
    import subprocess

    env = {
        **os.environ,
        "OBFLEET_DATA_DIR": str(server.data_dir),
        "OBFLEET_DATABASE_URL": database_url,
        "OBFLEET_SECRET_KEY": SECRET_KEY,
        "OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    r = subprocess.run(
        [sys.executable, "-m", "obfleet", "accesskey", "create", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    access_key = re.search(r"AccessKey ID:\s+(\S+)", r.stdout)
    secret = re.search(r"AccessKey Secret:\s+(\S+)", r.stdout)
    assert access_key and secret
    return access_key.group(1), secret.group(1)


def test_access_key_profile_signs_requests(
    server: ServerProcess, tmp_path: Path, database_url: str
) -> None:
    access_key, secret = create_access_key(server, database_url)
    client = Client(tmp_path / "config", {})
    r = client("login", "--url", server.url, "--access-key-id", access_key, "--password-stdin",
               input=secret + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout + r.stderr
    stored = json.loads(profiles_file(client).read_text())["default"]
    assert stored["access_key_id"] == access_key
    assert stored["password"] == ""
    # A signed POST with a body, signed GETs with a query; an answer means the signature held.
    r = client("credential", "add", "pw1", "--type", "OB_CLUSTER", "--username", "proxyro",
               "--secret-stdin", input="Proxyro_pw_1\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = client("credential", "list", "-o", "json")
    assert [c["name"] for c in json.loads(r.stdout)] == ["pw1"]
    # A wrong secret from the environment (over the stored profile) is refused.
    wrong = {"OBFLEET_ACCESS_KEY_ID": access_key, "OBFLEET_ACCESS_KEY_SECRET": "0" * len(secret)}
    bad = client("credential", "list", env=wrong)
    assert bad.returncode == 1 and "401" in bad.stderr


def test_environment_alone_is_a_profile(obfleet: Client) -> None:
    r = obfleet("task", "list", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    wrong = obfleet("task", "list", env={"OBFLEET_PASSWORD": "Wrong_pass_123"})
    assert wrong.returncode == 1 and "401" in wrong.stderr
