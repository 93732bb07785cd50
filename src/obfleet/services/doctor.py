"""`obfleet doctor`: what a service started with these settings would meet, checked without
changing anything (no migration, no user, no file made)."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import httpx

from obfleet.config import Settings
from obfleet.security.datadir import shared_entries
from obfleet.store.db import Database
from obfleet.store.migrate import current_revision, head_revision
from obfleet.store.outage import first_line

ADVERTISE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Finding:
    check: str
    healthy: bool
    detail: str


def examine(settings: Settings) -> list[Finding]:
    return [
        check_data_dir(settings.data_dir),
        check_metadb(settings),
        check_advertise_url(settings.advertise_url),
    ]


def check_data_dir(data_dir: Path) -> Finding:
    if not data_dir.is_dir():
        return Finding("data dir", False, f"{data_dir} does not exist (a start creates it, 0700)")
    shared = shared_entries(data_dir)
    if shared:
        shown = ", ".join(f"{p} ({stat.S_IMODE(p.lstat().st_mode):o})" for p in shared[:3])
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        return Finding(
            "data dir",
            False,
            f"other users may read {shown}{more}: run `chmod -R go-rwx {data_dir}` "
            "(the next start also does it)",
        )
    return Finding("data dir", True, f"{data_dir}: private to its owner (0700, files 0600)")


def check_metadb(settings: Settings) -> Finding:
    if not settings.database_url and not (settings.data_dir / "obfleet.db").exists():
        return Finding(
            "metadb",
            False,
            f"no SQLite metadb in {settings.data_dir} yet: `obfleet migrate` or a first "
            "`obfleet serve` creates it",
        )
    db = Database(settings.effective_database_url)
    try:
        current = current_revision(db)
    except Exception as exc:  # any driver's error: shown as found, not raised
        return Finding("metadb", False, f"cannot reach {_where(db)}: {first_line(exc)}")
    finally:
        db.dispose()
    head = head_revision()
    if current != head:
        return Finding(
            "metadb",
            False,
            f"{_where(db)} is at schema {current or 'none'}, this obfleet needs {head}: "
            "run `obfleet migrate` (a start also does it)",
        )
    return Finding("metadb", True, f"{_where(db)}: reachable, schema up to date ({head})")


def check_advertise_url(url: str | None) -> Finding:
    if not url:
        return Finding(
            "advertise URL",
            True,
            "OBFLEET_ADVERTISE_URL is not set: hosts are given the URL each request came in "
            "on; set it when hosts reach obfleet another way (CONFIG_URL mode, downloads)",
        )
    probe = f"{url.rstrip('/')}/api/v2/info"
    try:
        answer = httpx.get(probe, timeout=ADVERTISE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Finding(
            "advertise URL", False, f"{probe} cannot be reached from here: {first_line(exc)}"
        )
    if not _is_obfleet(answer):
        return Finding(
            "advertise URL", False, f"{probe} answered {answer.status_code}, but not as obfleet"
        )
    return Finding(
        "advertise URL",
        True,
        f"{probe} answers from here (hosts must reach it too: check from one of them)",
    )


def _is_obfleet(answer: httpx.Response) -> bool:
    try:
        body = answer.json()
    except ValueError:  # not JSON
        return False
    told = body.get("artifact") if isinstance(body, dict) else None
    return answer.status_code == 200 and told == "obfleet"


def _where(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=True)
