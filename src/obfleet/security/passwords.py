"""Passwords that are only checked are stored as argon2 hashes."""

from __future__ import annotations

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


def generate_password(length: int = 20) -> str:
    """A random password with OCP's usual character classes (upper, lower, digit, special)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(length - 3))
    return body + secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice("23456789") + "_"
