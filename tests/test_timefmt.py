"""OCP's time format, in the server's local zone, across the zone's offset changes."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a child with TZ set: the zone is the C library's, read when the process starts.
CHECK = """
from datetime import UTC, datetime, timedelta
from obfleet.timefmt import iso

start = datetime(2024, 1, 1, tzinfo=UTC)
for minute in range(0, 366 * 24 * 60, 29):  # a leap year, every 29 minutes
    for second in (0.0, 59.999):
        value = start + timedelta(minutes=minute, seconds=second)
        expected = value.astimezone().isoformat(timespec="milliseconds")
        assert iso(value) == expected, (value, iso(value), expected)
        naive = value.replace(tzinfo=None)
        assert iso(naive) == expected, (naive, iso(naive), expected)
print("checked")
"""


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"],
)
def test_times_are_shown_in_the_local_zone_on_both_sides_of_each_change(zone):
    """New York moves by an hour, Lord Howe by half an hour, Kathmandu is +05:45."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        env={"TZ": zone, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "checked"
