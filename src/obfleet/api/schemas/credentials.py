"""obfleet's credentials (extension): the secret is never shown."""

from __future__ import annotations

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.store.models.credentials import Credential

MASK = "***"


class CredentialOut(ApiModel):
    id: int
    name: str
    target_type: str
    auth_type: str
    username: str
    secret: str = MASK
    description: str | None
    create_time: OcpTime
    update_time: OcpTime

    @classmethod
    def of(cls, credential: Credential) -> CredentialOut:
        return cls.model_validate(credential)


class RevealedSecretOut(ApiModel):
    """A generated password, shown once (extension: POST /api/v2/credentials/{id}/reveal)."""

    id: int
    name: str
    username: str
    password: str
