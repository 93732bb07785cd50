"""The client speaks the public HTTP API only: no module of obfleet.client imports the server's
own code, so it works against any obfleet (and OCP) and cannot lean on server internals."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import obfleet.client

CLIENT_DIR = Path(obfleet.client.__file__).parent


def obfleet_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [n for n in names if n == "obfleet" or n.startswith("obfleet.")]


def test_client_modules_import_only_the_client() -> None:
    files = sorted(CLIENT_DIR.rglob("*.py"))
    assert len(files) > 5
    outside = {
        f"{path.relative_to(CLIENT_DIR)}: {name}"
        for path in files
        for name in obfleet_imports(path)
        if not name.startswith("obfleet.client")
    }
    assert outside == set()


def test_loading_the_client_loads_no_server_module() -> None:
    """Also at run time (an import hidden in a function would show here), and none of the
    server's frameworks come along."""
    code = (
        "import sys, obfleet.client.cli\n"
        "from obfleet.client import api, obd, plan, spec, watch\n"
        "print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    ours = [m for m in loaded if m.split(".")[0] == "obfleet"]
    assert "obfleet.client.cli" in ours
    assert [m for m in ours if m != "obfleet" and not m.startswith("obfleet.client")] == []
    assert not {"fastapi", "sqlalchemy", "asyncssh"} & set(loaded)


def run_obfleet_and_list_modules(*args: str) -> tuple[str, set[str]]:
    """What `obfleet ARGS` prints, and the top-level modules it had loaded by its end."""
    code = (
        "import sys\n"
        "from obfleet.cli import app\n"
        "try:\n"
        f"    app({list(args)!r}, prog_name='obfleet')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout, {m.split(".")[0] for m in done.stderr.split()}


def test_client_commands_start_without_the_server() -> None:
    """`obfleet` loads the server (its app, SQLAlchemy, argon2) only for the commands that run
    it: the client's commands, and `--help` listing every command, start without it."""
    server_frameworks = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "argon2"}
    shown, loaded = run_obfleet_and_list_modules("task", "--help")
    assert "list" in shown and "watch" in shown
    assert server_frameworks & loaded == set()
    shown, loaded = run_obfleet_and_list_modules("--help")
    for command in ("serve", "migrate", "doctor", "user", "accesskey", "apply", "cluster", "task"):
        assert command in shown
    assert server_frameworks & loaded == set()
    _, loaded = run_obfleet_and_list_modules("hash-password", "--password", "x")
    assert "argon2" in loaded  # the server's commands still load what they use
