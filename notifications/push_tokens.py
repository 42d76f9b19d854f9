"""Push tokens registered and removed by the apps that hold them
(docs/runbooks/bookings-payments-notifications.md): registering again is harmless, and removal
is kept as an invalidation, audited, so a later send never reaches it.

A token stays with its owner while it is valid: only a producer (a trusted backend naming
the user) moves it. A customer registering a token another customer holds gets the answer
a fresh registration gets and the token stays where it was, so the answer never tells
whether, or whose, it is; a token its owner removed (or the provider invalidated) is free to
register again. A customer removes only their own: another's answers as a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import PushToken
from opsconsole.evidence import audit
from opsconsole.http.errors import InvalidInput, NotFound

logger = structlog.get_logger(__name__)

TOKEN_MAX = 500


class PushTokenInvalid(InvalidInput):
    code = "NTF-400-INVALID-PAYLOAD"


class PushTokenNotFound(NotFound):
    code = "NTF-404-PUSH-TOKEN-NOT-FOUND"
    default_message = "Push token not found."


@dataclass(frozen=True)
class PushTokenRegistration:
    """What the caller is told: the token as registered for them, and whether it is new."""

    token: str
    user_id: int
    valid: bool
    created: bool


def _state(token: PushToken) -> dict[str, object]:
    return {"user_id": token.user_id, "valid": token.valid}


def push_token_register(
    *, token: str, user_id: int, actor: audit.Actor, may_move: bool = False
) -> PushTokenRegistration:
    """Register `token` for the user. An invalidated token comes back valid; a valid one
    held by someone else moves only when `may_move` (a producer), and otherwise stays."""
    token = token.strip()
    if not token or len(token) > TOKEN_MAX or any(c.isspace() for c in token):
        raise PushTokenInvalid(details={"fields": {"token": ["1-500 characters, no spaces."]}})
    if not get_user_model().objects.filter(pk=user_id).exists():
        raise PushTokenInvalid(details={"fields": {"user_id": ["No such user."]}})
    try:
        return _register(token=token, user_id=user_id, actor=actor, may_move=may_move)
    except IntegrityError:
        # Registered at the same moment by another request: decide again against its row.
        return _register(token=token, user_id=user_id, actor=actor, may_move=may_move)


@transaction.atomic
def _register(
    *, token: str, user_id: int, actor: audit.Actor, may_move: bool
) -> PushTokenRegistration:
    fresh = PushTokenRegistration(token=token, user_id=user_id, valid=True, created=True)
    row = PushToken.objects.select_for_update().filter(token=token).first()
    if row is None:
        row = PushToken.objects.create(token=token, user_id=user_id)
        audit.record("notifications.push_token.registered", obj=row, after=_state(row), actor=actor)
        return fresh
    if row.user_id == user_id and row.valid:
        return PushTokenRegistration(token=token, user_id=user_id, valid=True, created=False)
    if row.user_id != user_id and row.valid and not may_move:
        # Someone else's live device: it stays theirs, nothing is written, and the caller
        # hears exactly what a fresh registration would have told them.
        logger.info("push_token_held_by_another", token_id=row.pk, claimed_for=user_id)
        return fresh
    before = _state(row)
    taken_over = row.user_id != user_id
    row.user_id, row.valid, row.invalidated_at = user_id, True, None
    row.save(update_fields=["user", "valid", "invalidated_at"])
    audit.record(
        "notifications.push_token.registered",
        obj=row,
        before=before,
        after=_state(row),
        actor=actor,
    )
    # A customer taking over a removed token hears what a fresh registration hears (else a
    # 200 would say the token had been registered before); a producer moved it knowingly.
    return PushTokenRegistration(
        token=token, user_id=user_id, valid=True, created=taken_over and not may_move
    )


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
