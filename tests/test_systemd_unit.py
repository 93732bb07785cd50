"""The systemd unit in contrib/ (and shown in the README): valid, and hardened."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.server import ROOT

UNIT = ROOT / "contrib" / "obfleet.service"
# systemd-analyze security's exposure (0 best, 10 worst; the threshold is given in tenths) the
# unit must stay within: 2.0 (it rates 1.5; a plain unit rates 9.6, "UNSAFE").
MOST_EXPOSURE_TENTHS = 20


def test_the_readme_shows_the_unit_as_it_is():
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- contrib/obfleet.service -->\n```ini\n", 1)[1].split("```", 1)[0]
    assert shown == UNIT.read_text()


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit with its ExecStart pointing at this checkout's obfleet (verify wants it)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    obfleet = ROOT / ".venv" / "bin" / "obfleet"
    local = tmp_path / "obfleet.service"
    local.write_text(UNIT.read_text().replace("/opt/obfleet/bin/obfleet", str(obfleet)))
    return local


def test_the_unit_is_valid(unit_here: Path):
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit_here)], capture_output=True, text=True
    )
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_the_unit_is_hardened(unit_here: Path):
    rated = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            f"--threshold={MOST_EXPOSURE_TENTHS}",
            "--no-pager",
            str(unit_here),
        ],
        capture_output=True,
        text=True,
    )
    assert rated.returncode == 0, rated.stdout[-2000:] + rated.stderr
