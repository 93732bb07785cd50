"""OpenSSH keys as `ssh-keygen` makes them by default (the OpenSSH format; with a passphrase,
bcrypt-encrypted), for the key types operators use."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

KEY_TYPES = ("ed25519", "ecdsa", "rsa")
PASSPHRASE = "Key_passphrase_1"


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str
    passphrase: str | None


def make_key(directory: Path, kind: str, passphrase: str | None) -> KeyPair:
    path = directory / f"id_{kind}_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase or "", "-C", "obfleet-test", "-f", path],
        check=True,
    )
    pair = KeyPair(path.read_text(), path.with_suffix(".pub").read_text(), passphrase)
    path.unlink()
    path.with_suffix(".pub").unlink()
    return pair


def with_passphrase(directory: Path, private_key: str, passphrase: str) -> str:
    """The same key, encrypted with `passphrase` (its public half stays authorized)."""
    path = directory / f"key_{uuid.uuid4().hex[:8]}"
    path.write_text(private_key)
    path.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", path], check=True)
    text = path.read_text()
    path.unlink()
    return text
