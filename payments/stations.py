"""Stations as principals: credentials issued and revoked by staff, and the DRF
authentication that turns `Authorization: Station <key>` into the station it was issued to."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from opsconsole.access.authentication import credential_failure_refusal
from opsconsole.evidence import audit
from opsconsole.http.client_address import client_ip
from opsconsole.http.errors import InvalidInput, NotFound
from payments.models import StationCredential

KEYWORD = "Station"
KEY_PREFIX_LENGTH = 12


class StationCredentialNotFound(NotFound):
    code = "PAY-404-STATION-CREDENTIAL-NOT-FOUND"
    default_message = "Station credential not found."


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _state(credential: StationCredential) -> dict[str, object]:
    return {
        "station_id": credential.station_id,
        "key_prefix": credential.key_prefix,
        "active": credential.active,
    }


@transaction.atomic
def station_credential_issue(
    *, station_id: str, label: str = "", actor: audit.Actor, reason: str
) -> tuple[StationCredential, str]:
    """A new credential for one station; returns it with the key, which is never stored."""
    station_id = station_id.strip()
    if not station_id:
        raise InvalidInput(
            "A station id is required.", details={"station_id": "A station id is required."}
        )
    key = "stn_" + secrets.token_urlsafe(32)
    credential = StationCredential.objects.create(
        station_id=station_id,
        label=label,
        key_prefix=key[:KEY_PREFIX_LENGTH],
        key_hash=_digest(key),
        created_by=audit.actor_label(actor),
    )
    audit.record(
        "payments.station_credential.issued",
        obj=credential,
        after=_state(credential),
        actor=actor,
        reason=reason,
    )
    return credential, key


@transaction.atomic
def station_credential_revoke(
    *, credential_id: int, actor: audit.Actor, reason: str
) -> StationCredential:

    def revoke(credential: StationCredential) -> list[str] | None:
        if not credential.active:
            return None
        credential.revoked_at = timezone.now()
        credential.revoked_by = audit.actor_label(actor)
        credential.revoked_reason = reason
        return ["revoked_at", "revoked_by", "revoked_reason"]

    return audit.audited_update(
        StationCredential.objects.filter(pk=credential_id),
        not_found=StationCredentialNotFound,
        change=revoke,
        state=_state,
        event="payments.station_credential.revoked",
        actor=actor,
        reason=reason,
    )


@dataclass(frozen=True)
class StationPrincipal:
    """The caller when a station credential authenticates: a station, not a staff user.
    It holds no Django permission, so it can reach nothing but the station routes."""

    station_id: str
    credential_id: int
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_anonymous: bool = False
    pk: None = None

    def get_username(self) -> str:
        return f"station:{self.station_id}"

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perms: object, obj: object = None) -> bool:
        return False

    def __str__(self) -> str:
        return self.get_username()


def credential_for_key(key: str) -> StationCredential | None:
    credential = StationCredential.objects.filter(
        key_prefix=key[:KEY_PREFIX_LENGTH], revoked_at__isnull=True
    ).first()
    if credential is None or not hmac.compare_digest(credential.key_hash, _digest(key)):
        return None
    return credential


class StationCredentialAuthentication(BaseAuthentication):
    """`Authorization: Station <key>`. A wrong or revoked key is a 401, until the client's
    address has failed AUTH_TOKEN_FAILURE_LIMIT credentials in the window (API tokens
    included): then a 429 with Retry-After, so keys cannot be guessed at the API's full
    rate. No header leaves the request anonymous, so the route answers 401 with this
    scheme's challenge."""

    def authenticate(self, request: Request) -> tuple[StationPrincipal, StationCredential] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        try:
            credential = self._credential(parts)
        except AuthenticationFailed as failed:
            refusal = credential_failure_refusal(client_ip(request))
            if refusal is not None:
                raise refusal from failed
            raise
        StationCredential.objects.filter(pk=credential.pk).update(last_used_at=timezone.now())
        principal = StationPrincipal(station_id=credential.station_id, credential_id=credential.pk)
        return principal, credential

    def _credential(self, parts: list[bytes]) -> StationCredential:
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid station credential header.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Invalid station credential.") from exc
        credential = credential_for_key(key)
        if credential is None:
            raise AuthenticationFailed("Invalid or revoked station credential.")
        return credential

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
