"""Users and access keys: creation, passwords, and checking who is calling."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.security.passwords import (
    generate_password,
    hash_password,
    is_password_hash,
    policy_problems,
    verify_against_nobody,
    verify_password,
)
from obfleet.security.roles import ROLES, Permission, permissions_of
from obfleet.security.secrets import SecretBox
from obfleet.store.models.iam import LOGINS_CHANGED, AccessKey, User, UserRole

# The user every metadb starts with (created on first start).
ADMIN = "admin"
USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{1,63}\Z")


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do."""

    user_id: int
    username: str
    permissions: frozenset[Permission]
    # The user's console session epoch when this was read (api/sessions.py): a console login
    # seals it into its cookie, and the cookie holds while the user's row keeps it.
    session_epoch: int = 0


def _principal(user: User) -> Principal:
    return Principal(user.id, user.username, permissions_of(user.role_names), user.session_epoch)


def _check_roles(roles: list[str]) -> None:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise bad_request(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    problems = policy_problems(password)
    if problems:
        raise ApiError(ErrorCode.PASSWORD_INVALID, "; ".join(problems))


def create_user(session: Session, username: str, password: str, roles: list[str]) -> User:
    _check_password(password)
    return _add_user(session, username, lambda: hash_password(password), roles)


def _add_user(
    session: Session, username: str, password_hash: Callable[[], str], roles: list[str]
) -> User:
    """Add a user after checking name and roles; the hash is made only once both pass."""
    if not USERNAME.match(username):
        raise bad_request(
            f"username '{username}' must start with a letter and use letters, "
            "digits, '_', '.' or '-' (2-64 characters)"
        )
    _check_roles(roles)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ApiError(ErrorCode.USER_EXISTS, username)
    user = User(
        username=username,
        password_hash=password_hash(),
        roles=[UserRole(role=r) for r in sorted(set(roles))],
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError(ErrorCode.USER_NOT_FOUND, username)
    return user


def set_password(session: Session, username: str, password: str) -> None:
    """A new password, which also ends the user's console sessions (whoever knew the old one
    may hold one)."""
    _check_password(password)
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    end_console_sessions(session, user.id)
    PASSWORD_CACHE.clear()


def end_console_sessions(session: Session, user_id: int, epoch: int | None = None) -> None:
    """Move the user's session epoch on, so that every console cookie made before is refused
    (only when it is still `epoch`, when given: a logout ends its own generation, once). One
    UPDATE adding 1 in the metadb, so that replicas ending sessions at once each move it."""
    ending = update(User).where(User.id == user_id)
    if epoch is not None:
        ending = ending.where(User.session_epoch == epoch)
    session.execute(ending.values(session_epoch=User.session_epoch + 1))


def ensure_admin(
    session: Session, password: str | None, password_hash: str | None = None
) -> str | None:
    """Create user admin on first start from the configured password hash or password (else a
    generated one); return the generated password when one was made."""
    if session.scalar(select(User.id).where(User.username == ADMIN)) is not None:
        return None
    if password_hash:
        if not is_password_hash(password_hash):
            raise ValueError(
                "OBFLEET_ADMIN_PASSWORD_HASH is not an argon2 hash: "
                "make one with `obfleet hash-password`"
            )
        _add_user(session, ADMIN, lambda: password_hash, ["ADMIN"])
        return None
    problems = policy_problems(password) if password else []
    if problems:
        raise ValueError(
            f"OBFLEET_ADMIN_PASSWORD is refused: {'; '.join(problems)}."
            " It must be 8 to 32 characters with at least two digits, two upper-case letters,"
            " two lower-case letters and two of . _ + @ # $ %"
        )
    generated = None if password else generate_password()
    create_user(session, ADMIN, password or generated or "", ["ADMIN"])
    return generated


class _PasswordCache:
    """Remembers recent successful Basic logins, so argon2 (slow by design) runs once per
    user and password rather than once per request. Keyed by a salted digest, never the
    password; a stored hash that changed (new password) invalidates the entry."""

    def __init__(self, limit: int = 1024) -> None:
        self._salt = secrets.token_bytes(16)
        self._entries: dict[bytes, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def key(self, username: str, password: str) -> bytes:
        return hashlib.sha256(self._salt + f"{username}\0{password}".encode()).digest()

    def get(self, key: bytes) -> tuple[int, str] | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: bytes, user_id: int, password_hash: str) -> None:
        with self._lock:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[key] = (user_id, password_hash)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PASSWORD_CACHE = _PasswordCache()


@dataclass(frozen=True)
class Login:
    """What a password login is checked against, read in a short session of its own so that
    the slow password check holds no metadb connection."""

    principal: Principal
    password_hash: str


def find_login(session: Session, username: str) -> Login | None:
    """The enabled user of that name, else None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.enabled:
        return None
    return Login(_principal(user), user.password_hash)


# How long a login read from the metadb is reused without reading it again while this process
# has changed no user: the most a user disabled, or a password or roles changed, through
# another replica (or by another process on a SQLite file) waits to take effect here.
LOGIN_RECHECK_S = 1.0


class RecentLogins:
    """The Login last read for each user name, so that a user's requests in a row cost no
    metadb read (and no thread-pool hop) for the login. An entry stands while this process has
    committed no change to users or roles since it was read (LOGINS_CHANGED), and for at most
    LOGIN_RECHECK_S; the count is taken before the read, so a change committed meanwhile
    voids what that read found."""

    def __init__(self, limit: int = 1024) -> None:
        self._entries: dict[str, tuple[Login, int, float]] = {}
        self._lock = threading.Lock()
        self._limit = limit

    @staticmethod
    def before_read() -> tuple[int, float]:
        return LOGINS_CHANGED.local.count, time.monotonic()

    def get(self, username: str) -> Login | None:
        with self._lock:
            entry = self._entries.get(username)
        if entry is None:
            return None
        login, changes, read_at = entry
        fresh = time.monotonic() - read_at < LOGIN_RECHECK_S
        return login if fresh and changes == LOGINS_CHANGED.local.count else None

    def put(self, username: str, login: Login | None, before: tuple[int, float]) -> None:
        if login is None:
            return
        with self._lock:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[username] = (login, *before)


def _cache_entry(login: Login) -> tuple[int, str]:
    return login.principal.user_id, login.password_hash


def cached_login(login: Login | None, username: str, password: str) -> Principal | None:
    """The principal when this password logged in recently, else None (cheap: no argon2)."""
    if login is None:
        return None
    key = PASSWORD_CACHE.key(username, password)
    return login.principal if PASSWORD_CACHE.get(key) == _cache_entry(login) else None


def check_login(login: Login | None, username: str, password: str) -> Principal | None:
    """The principal when the password matches (one argon2 check, also for an unknown or
    disabled user), else None."""
    if login is None:
        verify_against_nobody(password)
        return None
    if not verify_password(login.password_hash, password):
        return None
    PASSWORD_CACHE.put(PASSWORD_CACHE.key(username, password), *_cache_entry(login))
    return login.principal


def create_access_key(session: Session, box: SecretBox, username: str) -> tuple[str, str]:
    """A new AK/SK pair for the user; the SK is shown once and kept encrypted."""
    user = get_user(session, username)
    access_key_id = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
    secret = secrets.token_hex(16)
    session.add(
        AccessKey(
            access_key_id=access_key_id, secret_encrypted=box.encrypt(secret), user_id=user.id
        )
    )
    session.flush()
    return access_key_id, secret


def access_key_owner(
    session: Session, box: SecretBox, access_key_id: str
) -> tuple[Principal, str] | None:
    """The principal an access key acts for, and its secret (to recompute the signature)."""
    key = session.scalar(select(AccessKey).where(AccessKey.access_key_id == access_key_id))
    if key is None or not key.user.enabled:
        return None
    return _principal(key.user), box.decrypt(key.secret_encrypted)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)).unique())


def _is_enabled_admin(user: User) -> bool:
    return user.enabled and "ADMIN" in user.role_names


def _keep_an_admin(session: Session, leaving: User) -> None:
    """Refuse to disable or delete the last enabled ADMIN: nobody could manage users then."""
    if not _is_enabled_admin(leaving):
        return
    others = [u for u in list_users(session) if u.id != leaving.id and _is_enabled_admin(u)]
    if not others:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"{leaving.username} is the last enabled user with role ADMIN: "
            "give another user ADMIN first",
        )


def disable_user(session: Session, username: str) -> None:
    """Refuse every further login of the user, by password or access key (its keys stay)."""
    user = get_user(session, username)
    _keep_an_admin(session, user)
    user.enabled = False
    end_console_sessions(session, user.id)  # enabling the user again revives none of them


def enable_user(session: Session, username: str) -> None:
    get_user(session, username).enabled = True


def delete_user(session: Session, username: str) -> None:
    """Remove the user with its roles and access keys (tasks keep the creator's name)."""
    user = get_user(session, username)
    _keep_an_admin(session, user)
    for key in session.scalars(select(AccessKey).where(AccessKey.user_id == user.id)):
        session.delete(key)
    session.delete(user)
    session.flush()


def list_access_keys(session: Session, username: str | None = None) -> list[AccessKey]:
    """Every access key (or one user's), oldest first; their secrets stay encrypted."""
    query = select(AccessKey).order_by(AccessKey.id)
    if username is not None:
        query = query.where(AccessKey.user_id == get_user(session, username).id)
    return list(session.scalars(query).unique())


def revoke_access_key(session: Session, access_key_id: str) -> str:
    """Delete an access key; the name of the user it belonged to."""
    key = session.scalar(select(AccessKey).where(AccessKey.access_key_id == access_key_id))
    if key is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"No access key {access_key_id}.")
    owner = key.user.username
    session.delete(key)
    session.flush()
    return owner
