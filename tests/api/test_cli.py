"""The obfleet command: migrate, users, access keys, and --help that teaches."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from obfleet.security.passwords import verify_password
from obfleet.services import users
from obfleet.store.db import Database
from obfleet.store.models.iam import User
from tests.api.test_auth import _signed
from tests.conftest import ADMIN, SECRET_KEY, basic
from tests.server import ServerProcess, free_port


def run(
    data_dir: Path,
    database_url: str,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OBFLEET_DATA_DIR": str(data_dir),
        "OBFLEET_DATABASE_URL": database_url,
        "OBFLEET_ADMIN_PASSWORD": "Admin_Pass_12",
        # The key of the in-process app (`client`) the tests check logins through.
        "OBFLEET_SECRET_KEY": SECRET_KEY,
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "obfleet", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cli(tmp_path, database_url):
    return lambda *args, input=None, env=None: run(
        tmp_path / "data", database_url, *args, input=input, env=env
    )


def test_migrate_creates_schema(cli, database_url):
    r = cli("migrate")
    assert r.returncode == 0, r.stderr
    db = Database(database_url)
    with db.engine.connect() as conn:
        assert {"iam_user", "credential", "ob_cluster", "software_package"} <= set(
            inspect(conn).get_table_names()
        )
    db.dispose()


def test_user_add_list_passwd(cli):
    r = cli(
        "user",
        "add",
        "alice",
        "--roles",
        "OBPROXY_MANAGER,TASK_VIEWER",
        "--password",
        "Alice_Pass_12",
    )
    assert r.returncode == 0, r.stderr
    listing = cli("user", "list").stdout
    assert "alice" in listing and "OBPROXY_MANAGER" in listing and "admin" in listing
    assert "Alice_Pass_12" not in listing
    assert cli("user", "passwd", "alice", "--password", "Alice_Pass_22").returncode == 0
    bad = cli("user", "add", "bob", "--roles", "GOD", "--password", "Bob_Pass_123")
    assert bad.returncode == 1 and "unknown role" in bad.stderr
    missing = cli("user", "passwd", "nobody", "--password", "Xx_Pass_1234")
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_password_prompt(cli):
    r = cli("user", "add", "carol", "--roles", "ADMIN", input="Carol_Pass_12\nCarol_Pass_12\n")
    assert r.returncode == 0, r.stdout + r.stderr


def test_accesskey_create_shows_secret_once(cli):
    r = cli("accesskey", "create", "admin")
    assert r.returncode == 0, r.stderr
    assert "AccessKey ID:" in r.stdout and "AccessKey Secret:" in r.stdout


def test_help_teaches(cli):
    r = cli("--help")
    assert r.returncode == 0
    for word in ("serve", "migrate", "user", "accesskey", "OBFLEET_DATA_DIR"):
        assert word in r.stdout


def test_first_admin_from_a_password_hash(cli, database_url):
    made = cli("hash-password", input="Hashed_Pass_99\nHashed_Pass_99\n")
    assert made.returncode == 0, made.stderr
    password_hash = made.stdout.strip()
    assert "Hashed_Pass_99" not in made.stdout + made.stderr
    assert verify_password(password_hash, "Hashed_Pass_99")

    env = {"OBFLEET_ADMIN_PASSWORD": "", "OBFLEET_ADMIN_PASSWORD_HASH": password_hash}
    r = cli("user", "list", env=env)
    assert r.returncode == 0, r.stderr
    assert "with password" not in r.stderr, "nothing generated when a hash is given"
    db = Database(database_url)
    with db.session() as session:
        stored = session.scalars(select(User.password_hash).where(User.username == "admin"))
        assert stored.one() == password_hash
    db.dispose()


def test_a_bad_password_hash_is_refused_with_what_to_do(cli, database_url):
    env = {"OBFLEET_ADMIN_PASSWORD_HASH": "Admin_Pass_12"}  # a password where a hash belongs
    r = cli("user", "list", env=env)
    assert r.returncode == 1
    assert "not an argon2 hash" in r.stderr and "obfleet hash-password" in r.stderr
    db = Database(database_url)
    with db.session() as session:
        assert session.scalars(select(User.username)).all() == []
    db.dispose()


def test_user_passwords_off_ocps_rule_are_refused(cli):
    weak = cli("user", "add", "dave", "--roles", "ADMIN", "--password", "davepass")
    assert weak.returncode == 1 and "two special characters" in weak.stderr
    assert "0 digits" in weak.stderr and "davepass" not in weak.stderr
    assert cli("user", "passwd", "admin", "--password", "Admin_pass_1").returncode == 1
    assert "dave" not in cli("user", "list").stdout
    hashed = cli("hash-password", "--password", "short")
    assert hashed.returncode == 1 and "5 characters" in hashed.stderr and not hashed.stdout


def test_a_weak_first_admin_password_is_refused_at_start_saying_what_is_wrong(cli, database_url):
    r = cli("user", "list", env={"OBFLEET_ADMIN_PASSWORD": "Change_me_1"})
    assert r.returncode == 1
    assert "OBFLEET_ADMIN_PASSWORD" in r.stderr and "1 upper-case letters" in r.stderr
    assert "Change_me_1" not in r.stderr
    db = Database(database_url)
    with db.session() as session:
        assert session.scalars(select(User.username)).all() == []
    db.dispose()


def test_user_disable_enable_delete_take_effect_on_logins(cli, client, monkeypatch):
    # The CLI is another process: the server sees its changes once its login cache has to read
    # the login again (LOGIN_RECHECK_S). Left at a second, this test passed only when each CLI
    # call took longer than that.
    monkeypatch.setattr(users, "LOGIN_RECHECK_S", 0.0)
    bob = basic("bob", "Bob_Pass_123")
    made = cli("user", "add", "bob", "--roles", "ADMIN", "--password", "Bob_Pass_123")
    assert made.returncode == 0, made.stderr
    assert client.get("/api/v2/ob/clusters", headers=bob).status_code == 200

    assert cli("user", "disable", "bob").returncode == 0
    assert client.get("/api/v2/ob/clusters", headers=bob).status_code == 401
    listing = cli("user", "list").stdout
    assert re.search(r"bob\s.*ADMIN\s.*no", listing), listing
    assert cli("user", "enable", "bob").returncode == 0
    assert client.get("/api/v2/ob/clusters", headers=bob).status_code == 200

    deleted = cli("user", "delete", "bob")
    assert deleted.returncode == 0 and "user bob deleted" in deleted.stdout
    assert client.get("/api/v2/ob/clusters", headers=bob).status_code == 401
    assert "bob" not in cli("user", "list").stdout
    gone = cli("user", "delete", "bob")
    assert gone.returncode == 1 and "bob does not exist" in gone.stderr


def test_the_last_admin_cannot_be_disabled_or_deleted(cli, client):
    for action in ("disable", "delete"):
        refused = cli("user", action, "admin")
        assert refused.returncode == 1
        assert "last enabled user with role ADMIN" in refused.stderr
    assert client.get("/api/v2/ob/clusters", headers=ADMIN).status_code == 200


def test_accesskey_list_and_revoke(cli, client):
    made = cli("accesskey", "create", "admin")
    assert made.returncode == 0, made.stderr
    ak = re.search(r"AccessKey ID:\s+(\S+)", made.stdout).group(1)
    sk = re.search(r"AccessKey Secret:\s+(\S+)", made.stdout).group(1)
    path = "/api/v2/ob/clusters"

    def signed_status() -> int:
        headers = _signed(client, ak, sk, "GET", path, date=datetime.now(UTC))
        return client.get(path, headers=headers).status_code

    assert signed_status() == 200
    listing = cli("accesskey", "list")
    assert listing.returncode == 0 and ak in listing.stdout and "admin" in listing.stdout
    assert sk not in listing.stdout
    assert ak in cli("accesskey", "list", "admin").stdout
    assert cli("accesskey", "list", "nobody").returncode == 1

    revoked = cli("accesskey", "revoke", ak)
    assert revoked.returncode == 0 and f"access key {ak} of admin revoked" in revoked.stdout
    assert signed_status() == 401
    assert ak not in cli("accesskey", "list").stdout
    again = cli("accesskey", "revoke", ak)
    assert again.returncode == 1 and ak in again.stderr


def test_doctor_says_what_it_found_and_exits_by_it(cli, tmp_path):
    data_dir = tmp_path / "data"
    fresh = cli("doctor", env={"OBFLEET_DATABASE_URL": ""})
    assert fresh.returncode == 1
    assert "FAIL data dir" in fresh.stdout and "FAIL metadb: no SQLite metadb" in fresh.stdout
    assert not data_dir.exists(), "the doctor changes nothing"

    with ServerProcess(data_dir, env={"OBFLEET_DATABASE_URL": ""}) as server:
        env = {"OBFLEET_DATABASE_URL": "", "OBFLEET_ADVERTISE_URL": server.url}
        healthy = cli("doctor", env=env)
        assert healthy.returncode == 0, healthy.stdout
        for check in ("data dir", "metadb", "advertise URL"):
            assert f"ok   {check}:" in healthy.stdout
        assert f"{server.url}/api/v2/info answers from here" in healthy.stdout

        (data_dir / "obfleet.db").chmod(0o644)
        unreachable = {**env, "OBFLEET_ADVERTISE_URL": f"http://127.0.0.1:{free_port()}"}
        found = cli("doctor", env=unreachable)
    assert found.returncode == 1
    assert f"FAIL data dir: other users may read {data_dir / 'obfleet.db'} (644)" in found.stdout
    assert "FAIL advertise URL" in found.stdout and "cannot be reached" in found.stdout
    assert "ok   metadb" in found.stdout


def test_doctor_names_an_unreachable_metadb(cli):
    found = cli("doctor", env={"OBFLEET_DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/x"})
    assert found.returncode == 1
    assert "FAIL metadb: cannot reach postgresql" in found.stdout


def test_a_generated_admin_password_is_kept_until_admin_gets_another(cli, tmp_path):
    kept = tmp_path / "data" / "admin-password"
    first = cli("user", "list", env={"OBFLEET_ADMIN_PASSWORD": ""})
    assert first.returncode == 0, first.stderr
    (password,) = re.findall(r"user 'admin' with password: (\S+)", first.stderr)
    assert first.stderr.lstrip().startswith("┌") and str(kept) in first.stderr
    assert kept.read_text().strip() == password and kept.stat().st_mode & 0o777 == 0o600
    assert cli("user", "passwd", "admin", "--password", "Admin_Pass_34").returncode == 0
    assert not kept.exists()
