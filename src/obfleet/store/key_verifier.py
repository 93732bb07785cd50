"""The secret key every replica must share, checked at start against a verifier in the metadb.

Each replica encrypts and decrypts secrets (SSH keys, proxyro passwords) with its own copy of the
key. A replica given another key would start, serve, and fail only when a task first decrypts a
secret made elsewhere. So the first replica to start stores a token of a known text made with its
key, and every later start decrypts it: a replica with another key refuses to start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import IntegrityError

from obfleet.security.secrets import KEY_FILE, SecretBox, SecretBoxError
from obfleet.store.db import Database
from obfleet.store.models.replicas import MetadbSetting

VERIFIER = "secret_key_verifier"
KNOWN_TEXT = "obfleet secret key verifier"


class SecretKeyMismatch(ValueError):
    """This replica's key is not the one the metadb's secrets are encrypted with."""


def check_secret_key(db: Database, box: SecretBox, data_dir: Path) -> None:
    token = _stored_verifier(db) or _store_verifier(db, box)
    try:
        if box.decrypt(token) == KNOWN_TEXT:
            return
    except SecretBoxError:
        pass
    raise SecretKeyMismatch(
        "this replica's secret key is not the one the metadb's secrets are encrypted with "
        "(the key of the first obfleet started on it): set OBFLEET_SECRET_KEY to the key the "
        f"other replicas use, or copy their data dir's {KEY_FILE} to {data_dir / KEY_FILE}"
    )


def _stored_verifier(db: Database) -> str | None:
    with db.session() as session:
        row = session.get(MetadbSetting, VERIFIER)
        return None if row is None else row.value


def _store_verifier(db: Database, box: SecretBox) -> str:
    """Write this key's verifier (first start), or read the one a replica starting at the same
    moment wrote first."""
    try:
        with db.transaction() as session:
            session.add(MetadbSetting(name=VERIFIER, value=box.encrypt(KNOWN_TEXT)))
    except IntegrityError:
        pass
    token = _stored_verifier(db)
    assert token is not None
    return token
