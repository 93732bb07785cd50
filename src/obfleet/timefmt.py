"""Time as OCP shows it: ISO-8601 with offset and milliseconds (2021-09-03T15:05:01.101+08:00)."""

from __future__ import annotations

from datetime import UTC, datetime, timezone
from functools import lru_cache

# Every zone's offset changes on a quarter hour of UTC time (offsets are whole, half or
# three-quarter hours; the local mean times of the 1800s aside), so one look at the local zone
# serves every time in the same quarter hour.
_QUARTER_HOUR_S = 900


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """Format an aware (or naive-UTC) datetime in the server's local zone, milliseconds kept."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    zone = _local_zone(int(value.timestamp() // _QUARTER_HOUR_S))
    return value.astimezone(zone).isoformat(timespec="milliseconds")


@lru_cache(maxsize=4096)
def _local_zone(quarter_hour: int) -> timezone:
    """The local zone's offset during a quarter hour. `astimezone()` with no zone asks the C
    library for the local zone every time: half the cost of formatting a large page's times."""
    offset = datetime.fromtimestamp(quarter_hour * _QUARTER_HOUR_S, UTC).astimezone().utcoffset()
    assert offset is not None
    return timezone(offset)
