"""The two commands a newcomer types: `make run` installs what the service needs and nothing
more, and `make test` (scripts/test.sh) says how it is getting on while its runs go."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.server import ROOT

RUNS = ROOT / "scripts" / "lib" / "runs.sh"


def test_make_run_uses_a_runtime_only_install():
    planned = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "bash scripts/venv.sh runtime" in planned


@pytest.mark.slow
def test_a_runtime_install_has_no_test_toolchain(tmp_path: Path):
    """scripts/venv.sh runtime, in a copy of the tree: the service's command and none of the
    test tools."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "pyproject.toml", "README.md", "LICENSE", "src", "scripts"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    tree = tmp_path / "tree"
    for name in filter(None, tracked.decode().split("\0")):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["bash", "scripts/venv.sh", "runtime"], cwd=tree, check=True, timeout=600)
    version = subprocess.run(
        [tree / ".venv/bin/obfleet", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("obfleet ")
    for tool in ("pytest", "ruff", "mypy", "schemathesis"):
        assert not (tree / ".venv/bin" / tool).exists(), tool


def test_parallel_runs_report_as_they_go(tmp_path: Path):
    driver = tmp_path / "driver.sh"
    driver.write_text(
        f"""set -euo pipefail
RUNS_PROGRESS_SECONDS=1
source {RUNS}
start quick bash -c 'echo "..  [ 50%]"; echo "2 passed in 0.1s"'
start slow bash -c 'echo ".  [ 20%]"; sleep 4; echo "4 passed in 4s"'
start broken bash -c 'sleep 2; echo "1 failed in 2s"; exit 1'
start empty X=1 bash -c 'echo "no tests ran"; exit 5'
finish
"""
    )
    done = subprocess.run(
        ["bash", str(driver)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr

    def at(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    # Each run's end is told as it comes, before any log is printed, and the progress line in
    # between names how far the run still going has got.
    assert at("quick passed: 2 passed in 0.1s") < at("broken FAILED (exit 1): 1 failed in 2s")
    assert at("empty passed: no tests ran") < at("broken FAILED")
    assert at("slow passed") < at("== tests on")
    progress = [line for line in lines[: at("slow passed")] if "running:" in line]
    assert progress and progress[-1].endswith("running: slow 20%"), lines
    assert lines[-1] == "== FAILED on: broken"
    assert [line for line in lines if line.startswith("== tests on")] == [
        "== tests on quick",
        "== tests on slow",
        "== tests on broken",
        "== tests on empty",
    ]
    assert not list(tmp_path.glob("tmp.*")), "the logs are removed"
