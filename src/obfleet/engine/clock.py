"""Engine time follows the metadb's clock, so replicas on skewed hosts agree on lease expiry."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from obfleet.store.db import Database
from obfleet.timefmt import utcnow

# The database's current UTC time, naive. SQLite has no server: its clock is ours.
_DB_UTC_NOW = {
    "postgresql": "SELECT CAST(now() AT TIME ZONE 'UTC' AS timestamp)",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
}


class DbClock:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._offset = timedelta(0)

    def sync(self) -> None:
        """Measure how far the database's clock is from ours (call now and then)."""
        query = _DB_UTC_NOW.get(self._db.dialect)
        if query is None:
            return
        with self._db.engine.connect() as conn:
            before = time.monotonic()
            local = utcnow()
            server = conn.execute(text(query)).scalar_one()
            round_trip = timedelta(seconds=time.monotonic() - before)
        self._offset = server.replace(tzinfo=UTC) - (local + round_trip / 2)

    def now(self) -> datetime:
        return utcnow() + self._offset
