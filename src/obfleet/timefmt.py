"""Time as OCP shows it: ISO-8601 with offset and milliseconds (2021-09-03T15:05:01.101+08:00)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """Format an aware (or naive-UTC) datetime in the server's local zone, milliseconds kept."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().isoformat(timespec="milliseconds")
