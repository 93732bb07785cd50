"""The obfleet command: migrate, users, access keys, and --help that teaches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from obfleet.security.passwords import verify_password
from obfleet.store.db import Database
from obfleet.store.models.iam import User


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
