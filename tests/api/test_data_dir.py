"""The data dir and everything in it are private to obfleet's user, checked at every start."""

from __future__ import annotations

import dataclasses
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.security.datadir import DataDirError
from tests.conftest import ADMIN
from tests.server import SECRET_KEY


def modes(data_dir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode)
        for p in (data_dir, *data_dir.rglob("*"))
    }


def serve_once(settings: Settings) -> dict[str, int]:
    """Start the app on a SQLite metadb in its data dir, write through it, and give the modes
    seen while it runs (the -wal and -shm files exist only then)."""
    with TestClient(create_app(settings, run_engine=False)) as client:
        body = {
            "name": f"c{uuid.uuid4().hex[:8]}",
            "targetType": "HOST",
            "username": "u",
            "password": "p",
        }
        assert client.post("/api/v2/credentials", headers=ADMIN, json=body).status_code == 200
        return modes(settings.data_dir)


def test_a_new_data_dir_is_private(settings: Settings) -> None:
    seen = serve_once(dataclasses.replace(settings, database_url=""))
    assert {"obfleet.db", "obfleet.db-wal", "obfleet.db-shm"} <= set(seen)
    assert seen.pop(".") == 0o700
    assert set(seen.values()) == {0o600}, seen


def test_an_open_data_dir_is_made_private_at_start(settings: Settings) -> None:
    settings = dataclasses.replace(settings, database_url="")
    serve_once(settings)
    data = settings.data_dir
    (data / "packages").mkdir(mode=0o755)
    (data / "packages" / "old.rpm").write_bytes(b"rpm")
    for path, mode in ((data, 0o755), (data / "obfleet.db", 0o644), (data / "packages", 0o755)):
        path.chmod(mode)
    (data / "packages" / "old.rpm").chmod(0o664)
    seen = serve_once(settings)
    assert seen.pop(".") == seen.pop("packages") == 0o700
    assert set(seen.values()) == {0o600}, seen


def test_a_data_dir_that_cannot_be_made_private_is_refused(tmp_path: Path) -> None:
    """On a read-only mount the modes cannot change: obfleet refuses to start, saying what to
    do, rather than run with its secrets readable by other users."""
    data = tmp_path / "ro"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", data], check=True)
    try:
        (data / "obfleet.db").write_bytes(b"")
        (data / "obfleet.db").chmod(0o644)
        subprocess.run(["mount", "-o", "remount,ro", data], check=True)
        with pytest.raises(DataDirError, match="chmod go-rwx it, or run obfleet as its owner"):
            AppContext.open(Settings(data_dir=data, secret_key=SECRET_KEY))
    finally:
        subprocess.run(["umount", data], check=True)
