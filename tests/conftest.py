"""Fixtures shared by the whole suite: the metadb under test and an app to talk to.

The database comes from OBFLEET_TEST_DATABASE_URL: unset means a fresh SQLite file per test;
a PostgreSQL or MySQL-compatible URL gets a fresh database per test run, emptied per test.
"""

from __future__ import annotations

import base64
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis.configuration import set_hypothesis_home_dir

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.security.passwords import hash_password
from tests.dbfixtures import *  # noqa: F403 - the `database_url` fixtures
from tests.server import SECRET_KEY

pytest_plugins = ["tests.support.hostfixtures", "tests.support.browser"]


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis (under schemathesis, tests/api/test_fuzz.py) keeps caches in ./.hypothesis
    # unless told otherwise: a directory of this run's own, removed at its end.
    config.stash[HYPOTHESIS_HOME] = Path(tempfile.mkdtemp(prefix="obfleet-hypothesis-"))
    set_hypothesis_home_dir(config.stash[HYPOTHESIS_HOME])


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash[HYPOTHESIS_HOME], ignore_errors=True)


HYPOTHESIS_HOME = pytest.StashKey[Path]()

ADMIN_PASSWORD = "Admin_Pass_12"


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", ADMIN_PASSWORD)
# Where in-process requests come from: an address, as from a real client (TestClient's default
# "testclient" is none), and one the config server takes registrations from.
LOOPBACK = ("127.0.0.1", 50000)


@functools.cache
def admin_password_hash() -> str:
    """One argon2 hash of ADMIN_PASSWORD for the whole run: hashing it anew for every test's
    app (and checking the first login against a new hash) cost ~0.3 s of CPU a test."""
    return hash_password(ADMIN_PASSWORD)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_password_hash=admin_password_hash(),
        secret_key=SECRET_KEY,
        max_upload_bytes=8 * 1024 * 1024,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, run_engine=False), raise_server_exceptions=False, client=LOOPBACK
    ) as c:
        yield c


@pytest.fixture
def engine_client(settings: Settings) -> Iterator[TestClient]:
    """The app with its task engine running, as `obfleet serve` runs it."""
    with TestClient(create_app(settings), raise_server_exceptions=False, client=LOOPBACK) as c:
        yield c


def wait_task(client: TestClient, task_id: int, timeout: float = 30) -> dict:
    """Poll a task until it is no longer RUNNING; returns its final view."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/api/v2/tasks/instances/{task_id}", headers=ADMIN).json()["data"]
        if task["status"] != "RUNNING" or time.monotonic() > deadline:
            return task
        time.sleep(0.05)
