"""Time as OCP shows it: ISO-8601 with offset and milliseconds (2021-09-03T15:05:01.101+08:00)."""

from __future__ import annotations

from datetime import UTC, datetime, timezone
from functools import lru_cache

# Every zone's offset changes on a quarter hour of UTC time (offsets are whole, half or
# three-quarter hours; the local mean times of the 1800s aside), so one look at the local zone
# serves every time in the same quarter hour.
_QUARTER_HOUR_S = 900
# A UTC time as SQLite holds a DateTime column: 'YYYY-MM-DD HH:MM:SS.ffffff'.
_STORED_LEN = 26


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | str | None) -> str | None:
    """Format a time in the server's local zone, milliseconds kept.

    `value`: an aware datetime, a naive one in UTC, or a UTC time as SQLite stores it
    ('YYYY-MM-DD HH:MM:SS.ffffff': what a UTCDateTime column holds, read unprocessed, see
    store.base.as_stored). The seconds and their fraction read the same in every zone whose
    offset is a whole number of minutes, so only the minute is converted, once per minute of
    UTC: 0.3 us a value instead of 2 for a conversion of the whole time.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    else:
        if value.tzinfo is not None and value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        # An aware UTC time's offset ("+00:00") falls after the 26 characters.
        text = value.isoformat(" ", "microseconds")[:_STORED_LEN]
    minute = _local_minute(text[:16]) if len(text) == _STORED_LEN else None
    if minute is None:
        return _convert(datetime.fromisoformat(text).replace(tzinfo=UTC))
    # ':SS.fff' of ':SS.ffffff': isoformat's milliseconds are truncated, not rounded.
    return minute[0] + text[16:23] + minute[1]


@lru_cache(maxsize=8192)
def _local_minute(utc_minute: str) -> tuple[str, str] | None:
    """A minute of UTC ('YYYY-MM-DD HH:MM') as the local zone shows it: its date, hour and
    minute ('YYYY-MM-DDTHH:MM') and its offset ('+08:00'); None when the offset has seconds,
    which would change the seconds too. 8,192 minutes: a page of 2,000 tasks whose times all
    fall in minutes of their own (spread over months) is found again on its next read."""
    local = _convert(datetime.fromisoformat(utc_minute).replace(tzinfo=UTC))
    if local[16:23] != ":00.000":
        return None
    return local[:16], local[23:]


def _convert(value: datetime) -> str:
    """An aware datetime in the local zone, as OCP writes it."""
    zone = _local_zone(int(value.timestamp() // _QUARTER_HOUR_S))
    return value.astimezone(zone).isoformat(timespec="milliseconds")


@lru_cache(maxsize=4096)
def _local_zone(quarter_hour: int) -> timezone:
    """The local zone's offset during a quarter hour. `astimezone()` with no zone asks the C
    library for the local zone every time: half the cost of formatting a large page's times."""
    offset = datetime.fromtimestamp(quarter_hour * _QUARTER_HOUR_S, UTC).astimezone().utcoffset()
    assert offset is not None
    return timezone(offset)
