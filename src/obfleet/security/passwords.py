"""Passwords that are only checked are stored as argon2 hashes."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_password_hash(text: str) -> bool:
    """Whether `text` is an argon2 hash that passwords can be checked against."""
    try:
        extract_parameters(text)
    except InvalidHashError:
        return False
    return True


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def verify_against_nobody(password: str) -> None:
    """Spend one password check on a hash no password matches. A refusal for a username that
    does not exist (or is disabled) then takes as long as one for a wrong password, so the
    response time does not tell which usernames exist."""
    verify_password(_decoy_hash(), password)


def generate_password(length: int = 20) -> str:
    """A random password with OCP's usual character classes (upper, lower, digit, special)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(length - 3))
    return body + secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice("23456789") + "_"
