"""The password box: credentials kept encrypted, never shown, resolved only for use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import asyncssh
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.security.secrets import SecretBox
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import ObproxyCluster
from obfleet.store.refs import referencing_tables

TargetType = Literal["HOST", "OB_CLUSTER", "OBPROXY"]
AuthType = Literal["PASSWORD", "PRIVATE_KEY"]
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\Z")


@dataclass(frozen=True)
class Secret:
    """A credential opened for use by a flow or a service. Never rendered or logged."""

    username: str
    auth_type: str
    secret: str
    passphrase: str | None

    def __repr__(self) -> str:
        return f"Secret(username={self.username!r}, auth_type={self.auth_type!r}, ***)"


def _check_private_key(key: str, passphrase: str | None) -> None:
    try:
        asyncssh.import_private_key(key, passphrase)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise bad_request(f"privateKey is not a valid private key ({exc})") from exc


def _validate(
    target_type: str, auth_type: str, username: str, secret: str | None, passphrase: str | None
) -> None:
    if auth_type == "PRIVATE_KEY" and target_type != "HOST":
        raise bad_request("only HOST credentials can use a private key")
    if not USERNAME.match(username):
        raise bad_request(f"username '{username}' has characters a login name cannot have")
    if not secret:
        field = "privateKey" if auth_type == "PRIVATE_KEY" else "password"
        raise bad_request(f"{field} is required for a {auth_type} credential")
    if auth_type == "PRIVATE_KEY":
        _check_private_key(secret, passphrase)


def create(
    session: Session,
    box: SecretBox,
    *,
    name: str,
    target_type: str,
    auth_type: str,
    username: str,
    secret: str | None,
    passphrase: str | None = None,
    description: str | None = None,
) -> Credential:
    if not NAME.match(name):
        raise bad_request(
            f"name '{name}' must start with a letter and use letters, digits, "
            "'_', '.' or '-' (at most 64 characters)"
        )
    _validate(target_type, auth_type, username, secret, passphrase)
    if session.scalar(select(Credential.id).where(Credential.name == name)) is not None:
        raise ApiError(ErrorCode.CONFLICT, f"A credential named {name} already exists.")
    credential = Credential(
        name=name,
        target_type=target_type,
        auth_type=auth_type,
        username=username,
        secret_encrypted=box.encrypt(secret or ""),
        passphrase_encrypted=box.encrypt(passphrase) if passphrase else None,
        description=description,
    )
    session.add(credential)
    session.flush()
    return credential


def get(session: Session, credential_id: int, target_type: str | None = None) -> Credential:
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise ApiError(ErrorCode.CREDENTIAL_NOT_FOUND, credential_id)
    if target_type and credential.target_type != target_type:
        raise bad_request(
            f"credential {credential_id} is a {credential.target_type} credential, "
            f"not a {target_type} one"
        )
    return credential


def proxysys_of(session: Session, credential_id: int) -> ObproxyCluster | None:
    """The OBProxy cluster whose root@proxysys password the credential holds, if any."""
    return session.scalar(
        select(ObproxyCluster).where(ObproxyCluster.proxysys_credential_id == credential_id)
    )


def _refuse_proxysys_edit(session: Session, credential: Credential) -> None:
    """root@proxysys lives on the obproxies too: only the task that changes it there changes
    it here, or the health checks would log in with a password no obproxy has."""
    cluster = proxysys_of(session, credential.id)
    if cluster is not None:
        raise ApiError(
            ErrorCode.CREDENTIAL_IN_USE,
            credential.name,
            f"it is the root@proxysys password of OBProxy cluster {cluster.name}, which "
            'its obproxies have too; change it with the "Change obproxy password" task '
            f"(POST /api/v2/obproxy/clusters/{cluster.id}/changePassword)",
        )


def update(
    session: Session,
    box: SecretBox,
    credential_id: int,
    *,
    username: str | None,
    secret: str | None,
    passphrase: str | None,
    description: str | None,
) -> Credential:
    credential = get(session, credential_id)
    if secret is not None or username is not None or passphrase is not None:
        _refuse_proxysys_edit(session, credential)
    new_username = username or credential.username
    if secret is not None or username is not None:
        current = box.decrypt(credential.secret_encrypted)
        _validate(
            credential.target_type,
            credential.auth_type,
            new_username,
            secret if secret is not None else current,
            passphrase,
        )
    credential.username = new_username
    if secret is not None:
        credential.secret_encrypted = box.encrypt(secret)
        credential.passphrase_encrypted = box.encrypt(passphrase) if passphrase else None
    if description is not None:
        credential.description = description
    session.flush()
    return credential


def delete(session: Session, credential_id: int) -> None:
    credential = get(session, credential_id)
    users = referencing_tables(session, Credential.__tablename__, credential_id)
    if users:
        raise ApiError(
            ErrorCode.CREDENTIAL_IN_USE, credential.name, f"referenced by {', '.join(users)}"
        )
    session.delete(credential)


def forget(session: Session, credential_id: int) -> bool:
    """Delete a credential obfleet made for a task (no row refers to it); False when gone."""
    credential = session.get(Credential, credential_id)
    if credential is None:
        return False
    session.delete(credential)
    session.flush()
    return True


def trade_secrets(session: Session, first_id: int, second_id: int) -> None:
    """The two credentials trade their secrets (encrypted as they are)."""
    first, second = get(session, first_id), get(session, second_id)
    first.secret_encrypted, second.secret_encrypted = (
        second.secret_encrypted,
        first.secret_encrypted,
    )
    first.revealable = second.revealable = False
    session.flush()


def reveal_once(session: Session, box: SecretBox, credential_id: int) -> Secret:
    """A secret obfleet generated, shown to a person once: the credential is no longer
    revealable afterwards. Refused (409) for any other credential, and the second time."""
    credential = get(session, credential_id)
    if not credential.revealable:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"The secret of credential {credential.name} cannot be revealed: only a password "
            "obfleet generated can be, and only once",
        )
    credential.revealable = False
    session.flush()
    return reveal(session, box, credential_id)


def query(target_type: str | None) -> Select[Any]:
    stmt = select(Credential)
    return stmt.where(Credential.target_type == target_type) if target_type else stmt


def reveal(session: Session, box: SecretBox, credential_id: int) -> Secret:
    credential = get(session, credential_id)
    passphrase = (
        box.decrypt(credential.passphrase_encrypted) if credential.passphrase_encrypted else None
    )
    return Secret(
        credential.username,
        credential.auth_type,
        box.decrypt(credential.secret_encrypted),
        passphrase,
    )
