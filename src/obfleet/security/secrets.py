"""Secrets that must be read back (SSH passwords and keys, proxyro passwords, secret access keys)
are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from OBFLEET_SECRET_KEY, or from a key file made once in the data dir (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBoxError(RuntimeError):
    pass


def _fernet_key(material: str) -> bytes:
    # Any string works as OBFLEET_SECRET_KEY: a Fernet key is used as is, anything else is
    # stretched with SHA-256 into one.
    try:
        raw = base64.urlsafe_b64decode(material.encode())
        if len(raw) == 32:
            return material.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


def load_or_create_key(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return _fernet_key(configured)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return path.read_bytes().strip()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError(
                "a stored secret cannot be decrypted: OBFLEET_SECRET_KEY (or the key file in the "
                "data dir) is not the one it was encrypted with"
            ) from exc
