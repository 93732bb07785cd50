"""The first run of `obfleet serve`, as a new user meets it: the port is taken before anything
is made, and the generated admin password is shown last, in a box, and kept in a 0600 file of
the data dir until admin first logs in."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select

from obfleet import __version__
from obfleet.store.db import Database
from obfleet.store.models.iam import User
from tests.server import ServerProcess, listener_on_fresh_port

PASSWORD_LINE = re.compile(r"user 'admin' with password: (\S+)")


def test_a_taken_port_fails_the_start_before_anything_is_made(tmp_path, database_url):
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "OBFLEET_DATA_DIR": str(data_dir),
        "OBFLEET_DATABASE_URL": database_url,
        "OBFLEET_ADMIN_PASSWORD": "",  # a password would be generated
    }
    with listener_on_fresh_port() as taken:
        port = taken.getsockname()[1]
        started = subprocess.run(
            [sys.executable, "-m", "obfleet", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    said = started.stdout + started.stderr
    assert started.returncode == 1, said
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in started.stderr
    assert "choose another --port" in started.stderr
    assert "password" not in said and "obfleet is up" not in said
    assert not data_dir.exists()  # no secret key, no password file
    db = Database(database_url)
    try:
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 0
    finally:
        db.dispose()


def test_the_generated_password_is_shown_last_and_kept_until_admin_logs_in(tmp_path, database_url):
    server = ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_ADMIN_PASSWORD": ""}
    )
    kept = tmp_path / "data" / "admin-password"
    with server:
        # The box follows the first answers by a moment: uvicorn serves as soon as it listens.
        lines = shown_in_full(server).splitlines()
        (password,) = PASSWORD_LINE.findall(server.output())
        # The box closes the start-up output: only the requests answered since follow it.
        top = next(i for i, line in enumerate(lines) if line.startswith("┌"))
        box, after = lines[top : top + 7], lines[top + 7 :]
        assert box[-1].startswith("└") and all(line.startswith("│") for line in box[1:-1])
        assert password in box[1] and str(kept) in "".join(box)
        assert "obfleet listens on http://127.0.0.1:" in lines[top - 1]
        assert all("/api/v2/" in line for line in after), after

        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert kept.read_text().strip() == password
        assert httpx.get(f"{server.url}/api/v2/ob/clusters").status_code == 401
        assert kept.exists(), "kept while admin has not logged in"
        answer = httpx.get(f"{server.url}/api/v2/ob/clusters", auth=("admin", password))
        assert answer.status_code == 200, answer.text
        assert not kept.exists()
    with server:  # a second start shows no password
        assert len(PASSWORD_LINE.findall(server.output())) == 1
        assert not kept.exists()


def shown_in_full(server: ServerProcess, timeout: float = 15) -> str:
    """The server's output once the box has closed."""
    deadline = time.monotonic() + timeout
    while "└" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.output().rstrip()


def test_version():
    shown = subprocess.run(
        [sys.executable, "-m", "obfleet", "--version"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and shown.stdout.strip() == f"obfleet {__version__}"
