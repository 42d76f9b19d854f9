"""API tokens: issued and revoked through audited services (django-rest-knox stores only
the token's hash and its expiry)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from knox.models import AuthToken

from opsconsole import audit


def _state(token: AuthToken) -> dict[str, object]:
    return {
        "user": token.user.get_username(),
        "token_key": token.token_key,
        "expiry": token.expiry.isoformat() if token.expiry else None,
    }


@transaction.atomic
def api_token_issue(
    *, user: AbstractBaseUser, actor: audit.Actor, reason: str, days: int | None = None
) -> tuple[AuthToken, str]:
    """A new token for `user`; returns it with the key, which is never stored."""
    ttl = timedelta(days=days if days is not None else settings.API_TOKEN_TTL_DAYS)
    token, key = AuthToken.objects.create(user=user, expiry=ttl)
    audit.record(
        "platform.api_token.issued",
        object_type="knox.authtoken",
        object_id=token.token_key,
        after=_state(token),
        actor=actor,
        reason=reason,
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, digest: str, actor: audit.Actor, reason: str) -> bool:
    token = AuthToken.objects.select_for_update().filter(digest=digest).first()
    if token is None:
        return False
    before = _state(token)
    token.delete()
    audit.record(
        "platform.api_token.revoked",
        object_type="knox.authtoken",
        object_id=str(before["token_key"]),
        before=before,
        actor=actor,
        reason=reason,
    )
    return True
