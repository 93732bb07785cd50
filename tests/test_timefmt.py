"""OCP's time format, in the server's local zone, across the zone's offset changes."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a child with TZ set: the zone is the C library's, read when the process starts.
CHECK = """
from datetime import UTC, datetime, timedelta, timezone
from obfleet.timefmt import iso

def forms(value):
    # Every form iso() takes: aware (UTC and another offset), naive UTC, and the text SQLite
    # keeps a UTCDateTime in, read unprocessed (store.base.as_stored), with and without the
    # fraction SQLAlchemy always writes.
    naive = value.astimezone(UTC).replace(tzinfo=None)
    yield from (value, value.astimezone(timezone(timedelta(hours=-3, minutes=-30))), naive)
    yield naive.isoformat(" ", "microseconds")
    if not naive.microsecond:
        yield naive.isoformat(" ")

def check(value):
    expected = value.astimezone().isoformat(timespec="milliseconds")
    for form in forms(value):
        assert iso(form) == expected, (form, iso(form), expected)

start = datetime(2024, 1, 1, tzinfo=UTC)
for minute in range(0, 366 * 24 * 60, 29):  # a leap year, every 29 minutes
    for second in (0.0, 59.999, 7.0005):
        check(start + timedelta(minutes=minute, seconds=second))
# Offsets with seconds (Amsterdam's +00:19:32 until 1937), where the local seconds differ.
for day in range(0, 100 * 366, 5):
    check(datetime(1850, 1, 1, tzinfo=UTC) + timedelta(days=day, seconds=day * 7.25))
print("checked")
"""


@pytest.mark.parametrize(
    "zone",
    [
        "UTC",
        "Asia/Shanghai",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Europe/Amsterdam",
    ],
)
def test_times_are_shown_in_the_local_zone_on_both_sides_of_each_change(zone):
    """New York moves by an hour, Lord Howe by half an hour, Kathmandu is +05:45, Amsterdam
    was +00:19:32 until 1937."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        env={"TZ": zone, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "checked"
