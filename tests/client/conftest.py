"""A real `obfleet serve` and the `obfleet` client run as a user runs it: a subprocess with its
own config dir (XDG_CONFIG_HOME), so profiles are written where a user's would be."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.server import ServerProcess


@dataclass
class Client:
    """Runs `obfleet ...` with a config dir of its own and, optionally, env for scripts."""

    config_home: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "obfleet", *args],
            env=self.environ(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("OBFLEET_")}
        return {
            **base,
            "XDG_CONFIG_HOME": str(self.config_home),
            "COLUMNS": "200",
            **self.env,
            **(extra or {}),
        }


def client_for(tmp_path: Path, url: str = "") -> Client:
    env = {"OBFLEET_URL": url, "OBFLEET_USER": "admin", "OBFLEET_PASSWORD": ADMIN_PASSWORD}
    return Client(tmp_path / "config", env if url else {})


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    with ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD}
    ) as server:
        yield server


@pytest.fixture
def obfleet(server: ServerProcess, tmp_path: Path) -> Client:
    """The client, signed in as admin through the environment."""
    return client_for(tmp_path, server.url)


@pytest.fixture
def bare_client(tmp_path: Path) -> Callable[[], Client]:
    return lambda: client_for(tmp_path)
