"""API tokens: issued and revoked through audited services (django-rest-knox stores only
the token's hash and its expiry)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from knox.models import AuthToken

from opsconsole.evidence import audit


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


@transaction.atomic
def api_tokens_revoke_all(*, user: AbstractBaseUser, actor: audit.Actor, reason: str) -> int:
    """Every API token of `user` revoked, each with its audit row; returns how many."""
    revoked = 0
    for digest in AuthToken.objects.filter(user=user).values_list("digest", flat=True):
        revoked += api_token_revoke(digest=digest, actor=actor, reason=reason)
    return revoked


def api_tokens_of(user: AbstractBaseUser) -> list[AuthToken]:
    """A user's own tokens, newest first (the key is never stored: the prefix names one)."""
    return list(AuthToken.objects.filter(user=user).order_by("-created"))


@transaction.atomic
def api_token_revoke_own(
    *, user: AbstractBaseUser, token_key: str, actor: audit.Actor, reason: str
) -> bool:
    """Revoke one of `user`'s own tokens by its prefix; another user's is not found."""
    digests = list(
        AuthToken.objects.filter(user=user, token_key=token_key).values_list("digest", flat=True)
    )
    return any([api_token_revoke(digest=d, actor=actor, reason=reason) for d in digests])


# ------------------------------------------------------- credentials that change revoke

# Set by pre_save when the password or the active flag is about to change, read by
# post_save, so tokens are revoked only after the change itself is written.
_CHANGED_FLAG = "_api_tokens_revoke_reason"


def note_credential_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_save of the user model: a new password or a deactivation ends every API token
    (a token must not outlive the password that got it, nor the account)."""
    update_fields = kwargs.get("update_fields")
    if instance.pk is None or (update_fields and not {"password", "is_active"} & update_fields):
        return  # a new user, or a save of other fields (last_login at every sign-in)
    before = (
        type(instance)
        ._default_manager.filter(pk=instance.pk)
        .values("password", "is_active")
        .first()
    )
    if before is None:
        return
    if before["password"] != instance.password:
        setattr(instance, _CHANGED_FLAG, "the password changed")
    elif before["is_active"] and not instance.is_active:
        setattr(instance, _CHANGED_FLAG, "the account was deactivated")


def revoke_tokens_after_credential_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """post_save of the user model: revoke, audited, in the save's transaction."""
    reason = getattr(instance, _CHANGED_FLAG, "")
    if not reason:
        return
    delattr(instance, _CHANGED_FLAG)
    api_tokens_revoke_all(user=instance, actor="system:credentials", reason=reason)
