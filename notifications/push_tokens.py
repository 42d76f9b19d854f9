"""Push tokens registered and removed by the apps that hold them (seed 003's device tokens):
registering again is harmless, a token moves to its new user, and removal is kept as an
invalidation, audited, so a later send never reaches it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import PushToken
from opsconsole import audit
from opsconsole.errors import InvalidInput, NotFound

TOKEN_MAX = 500


class PushTokenInvalid(InvalidInput):
    code = "NTF-400-INVALID-PAYLOAD"


class PushTokenNotFound(NotFound):
    code = "NTF-404-PUSH-TOKEN-NOT-FOUND"
    default_message = "Push token not found."


def _state(token: PushToken) -> dict[str, object]:
    return {"user_id": token.user_id, "valid": token.valid}


def push_token_register(*, token: str, user_id: int, actor: audit.Actor) -> tuple[PushToken, bool]:
    """Register `token` for the user; (row, created). An invalidated token comes back valid."""
    token = token.strip()
    if not token or len(token) > TOKEN_MAX or any(c.isspace() for c in token):
        raise PushTokenInvalid(details={"fields": {"token": ["1-500 characters, no spaces."]}})
    if not get_user_model().objects.filter(pk=user_id).exists():
        raise PushTokenInvalid(details={"fields": {"user_id": ["No such user."]}})
    try:
        with transaction.atomic():
            row = PushToken.objects.select_for_update().filter(token=token).first()
            if row is None:
                row = PushToken.objects.create(token=token, user_id=user_id)
                audit.record(
                    "notifications.push_token.registered", obj=row, after=_state(row), actor=actor
                )
                return row, True
            if row.user_id == user_id and row.valid:
                return row, False
            before = _state(row)
            row.user_id, row.valid, row.invalidated_at = user_id, True, None
            row.save(update_fields=["user", "valid", "invalidated_at"])
            audit.record(
                "notifications.push_token.registered",
                obj=row,
                before=before,
                after=_state(row),
                actor=actor,
            )
            return row, False
    except IntegrityError:  # registered at the same moment by another request
        return PushToken.objects.get(token=token), False


@transaction.atomic
def push_token_remove(*, token: str, actor: audit.Actor, user_id: int | None = None) -> PushToken:
    """Invalidate `token` (of `user_id` when given: a customer removes only their own)."""
    rows = PushToken.objects.select_for_update().filter(token=token.strip())
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    row = rows.first()
    if row is None:
        raise PushTokenNotFound()
    if not row.valid:
        return row
    before = _state(row)
    row.valid, row.invalidated_at = False, timezone.now()
    row.save(update_fields=["valid", "invalidated_at"])
    audit.record(
        "notifications.push_token.removed", obj=row, before=before, after=_state(row), actor=actor
    )
    return row
