"""Passwords that are only checked are stored as argon2 hashes; user passwords follow OCP's rule."""

from __future__ import annotations

import functools
import secrets
import string

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


# OCP's password rule (error 3009): 8-32 characters, at least two of each class below.
MIN_LENGTH, MAX_LENGTH, AT_LEAST = 8, 32, 2
SPECIALS = "._+@#$%"
CLASSES = {
    "digits": "0123456789",
    "upper-case letters": string.ascii_uppercase,
    "lower-case letters": string.ascii_lowercase,
    f"special characters ({' '.join(SPECIALS)})": SPECIALS,
}
ALLOWED = frozenset("".join(CLASSES.values()))


def policy_problems(password: str) -> list[str]:
    """What keeps `password` from OCP's rule, in words (empty when it follows it)."""
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"it has {len(password)} characters, not {MIN_LENGTH} to {MAX_LENGTH}")
    for name, members in CLASSES.items():
        count = sum(char in members for char in password)
        if count < AT_LEAST:
            problems.append(f"it has {count} {name}, not at least {AT_LEAST}")
    if not ALLOWED.issuperset(password):
        problems.append("it has characters other than letters, digits and the specials")
    return problems


def generate_password(length: int = 20) -> str:
    """A random password that follows OCP's rule: two of each class at its end, random
    characters before them. Its specials are '.' and '_' only, which no shell or OBProxy
    option string treats specially."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    classes = ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "._")
    required = [secrets.choice(chars) for chars in classes for _ in range(AT_LEAST)]
    body = [secrets.choice(alphabet) for _ in range(length - len(required))]
    return "".join(body + required)
