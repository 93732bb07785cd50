"""Extension: the password box (OCP documents no API for it). Secrets go in and never come out,
except a password obfleet generated (a cluster's root@proxysys), which its reveal shows once to
a user allowed to change credentials, with a log line naming who."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.paging import Page, PageRequest, page_request, paginate
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.credentials import CredentialOut, RevealedSecretOut
from obfleet.records import credentials as service
from obfleet.security.roles import Resource
from obfleet.services.users import Principal
from obfleet.store.models.credentials import Credential

router = APIRouter(prefix="/api/v2/credentials", tags=["credentials (extension)"])
READ = Depends(require(Resource.CREDENTIAL))
PRIVATE_KEY_EXAMPLE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "...\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
WRITE = Depends(require(Resource.CREDENTIAL, write=True))
audit = logging.getLogger("obfleet.audit")


class CredentialIn(RequestModel):
    model_config = example(
        {
            "name": "root_key",
            "targetType": "HOST",
            "authType": "PRIVATE_KEY",
            "username": "root",
            "privateKey": PRIVATE_KEY_EXAMPLE,
            "passphrase": "Key_phrase_12",
            "description": "root on the OBProxy hosts",
        }
    )

    name: str = Field(min_length=1, max_length=64)
    target_type: Literal["HOST", "OB_CLUSTER", "OBPROXY"]
    auth_type: Literal["PASSWORD", "PRIVATE_KEY"] = "PASSWORD"
    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(
        None, max_length=4096, examples=["Root_pw_123"], description="With authType PASSWORD."
    )
    private_key: str | None = Field(None, max_length=65536)
    passphrase: str | None = Field(None, max_length=1024)
    description: str | None = Field(None, max_length=256)


class CredentialPatch(RequestModel):
    model_config = example(
        {
            "username": "admin",
            "password": "Admin_pw_456",
            "privateKey": PRIVATE_KEY_EXAMPLE,
            "passphrase": "Key_phrase_34",
            "description": "admin on the OBProxy hosts",
        }
    )

    username: str | None = Field(None, min_length=1, max_length=64)
    password: str | None = Field(None, max_length=4096)
    private_key: str | None = Field(None, max_length=65536)
    passphrase: str | None = Field(None, max_length=1024)
    description: str | None = Field(None, max_length=256)


@router.post(
    "", dependencies=[WRITE], response_model=Envelope[CredentialOut], summary="Create a credential"
)
def create_credential(body: CredentialIn, ctx: CtxDep, session: SessionDep) -> EnvelopeResponse:
    """Keep a user name and its secret (a password, or a private key with its passphrase) encrypted
    in the metadb, for reaching hosts (HOST), OceanBase clusters (OB_CLUSTER) or OBProxies
    (OBPROXY). The answer never holds the secret."""
    secret = body.private_key if body.auth_type == "PRIVATE_KEY" else body.password
    credential = service.create(
        session,
        ctx.secrets,
        name=body.name,
        target_type=body.target_type,
        auth_type=body.auth_type,
        username=body.username,
        secret=secret,
        passphrase=body.passphrase,
        description=body.description,
    )
    return ok(CredentialOut.of(credential))


@router.get(
    "",
    dependencies=[READ],
    response_model=Envelope[Page[CredentialOut]],
    summary="List credentials",
)
def list_credentials(
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    target_type: Literal["HOST", "OB_CLUSTER", "OBPROXY"] | None = Query(None, alias="targetType"),
) -> EnvelopeResponse:
    """Credentials, a page at a time, optionally of one target type; secrets are never shown."""
    sortable = {"id": Credential.id, "name": Credential.name}
    return ok(
        paginate(
            session, service.query(target_type), page, sortable, Credential.id, CredentialOut.of
        )
    )


@router.get(
    "/{credential_id}",
    dependencies=[READ],
    response_model=Envelope[CredentialOut],
    summary="Get a credential",
)
def get_credential(credential_id: int, session: SessionDep) -> EnvelopeResponse:
    """One credential: its name, target, user and whether a secret is set (never the secret)."""
    return ok(CredentialOut.of(service.get(session, credential_id)))


@router.patch(
    "/{credential_id}",
    dependencies=[WRITE],
    response_model=Envelope[CredentialOut],
    summary="Change a credential's user, secret or description",
)
def update_credential(
    credential_id: int, body: CredentialPatch, ctx: CtxDep, session: SessionDep
) -> EnvelopeResponse:
    """Change the user name, the secret or the description of a credential; the fields left out stay
    as they are. Hosts and clusters using it use the new values from their next connection."""
    secret = body.private_key if body.private_key is not None else body.password
    credential = service.update(
        session,
        ctx.secrets,
        credential_id,
        username=body.username,
        secret=secret,
        passphrase=body.passphrase,
        description=body.description,
    )
    return ok(CredentialOut.of(credential))


@router.delete(
    "/{credential_id}",
    dependencies=[WRITE],
    response_model=Envelope[None],
    summary="Delete a credential nothing uses",
)
def delete_credential(credential_id: int, session: SessionDep) -> EnvelopeResponse:
    """Delete a credential. Refused (409) while a host, an OceanBase cluster or an OBProxy cluster
    uses it."""
    service.delete(session, credential_id)
    return ok()


@router.post(
    "/{credential_id}/reveal",
    response_model=Envelope[RevealedSecretOut],
    summary="Show a password obfleet generated, once (extension)",
)
def reveal_credential(
    credential_id: int,
    ctx: CtxDep,
    session: SessionDep,
    principal: Principal = Depends(require(Resource.CREDENTIAL, write=True)),
) -> EnvelopeResponse:
    """The password obfleet generated for a cluster's root@proxysys, shown once to a user who
    may change credentials (and logged with who); a second reveal, or a password a user chose,
    is refused."""
    secret = service.reveal_once(session, ctx.secrets, credential_id)
    credential = service.get(session, credential_id)
    audit.info(
        "credential %s (%s) revealed to user %s (id %s)",
        credential.id,
        credential.name,
        principal.username,
        principal.user_id,
    )
    return ok(
        RevealedSecretOut(
            id=credential.id,
            name=credential.name,
            username=secret.username,
            password=secret.secret,
        )
    )
