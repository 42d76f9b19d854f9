"""Idempotency-Key for unsafe API views (draft-ietf-httpapi-idempotency-key-header).

Same key + same request: the stored status and body come back without running the view
again. Same key + a different request: 422. Same key while the first is still running: 409.
Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS (24 h). A key whose request died mid-flight
(no outcome after IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS) may be taken over by a retry; the
service under it is itself guarded by its state machine, so a takeover cannot act twice.

The claim row is committed before the view runs, which is what lets a concurrent request
with the same key see it and answer 409 instead of racing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.principals import principal_key
from opsconsole.http.errors import DEFAULT_PREFIX, Conflict, InvalidInput, Unprocessable
from opsconsole.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1-255 visible ASCII characters (the schema declares the same).
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_RE = re.compile(KEY_PATTERN)
# A secret an answer shows once (a new signing secret) is never kept for the replay: the
# idempotency table is readable for 24 hours and the same key would show it again.
SHOWN_ONCE_FIELDS = frozenset({"signing_secret"})
SHOWN_ONCE_NOTICE = "shown once, in the first answer to this key; rotate to get a new one"


def without_shown_once_secrets(body: Any) -> Any:
    """The answer as it may be stored: every shown-once secret replaced by a notice."""
    if isinstance(body, dict):
        return {
            name: SHOWN_ONCE_NOTICE if name in SHOWN_ONCE_FIELDS and value else value
            for name, value in body.items()
        }
    return body


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_claim(
    *, owner: str, key: str, fingerprint: str, method: str, path: str, error_prefix: str
) -> IdempotencyKey | StoredResponse:
    """Claim the key for this request, or return the outcome already stored for it."""
    now = timezone.now()
    ttl = timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                owner=owner,
                key=key,
                request_fingerprint=fingerprint,
                method=method,
                path=path,
                locked_at=now,
                expires_at=now + ttl,
            )
    except IntegrityError:
        pass

    with transaction.atomic():
        row = IdempotencyKey.objects.select_for_update().get(owner=owner, key=key)
        if row.expires_at <= now:
            _reclaim(row, fingerprint=fingerprint, method=method, path=path, now=now, ttl=ttl)
            return row
        if row.request_fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request.",
                code=f"{error_prefix}-422-IDEMPOTENCY-KEY-REUSED",
                details={"idempotency_key": key},
            )
        if row.state == IdempotencyKey.State.IN_FLIGHT:
            stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS)
            if row.locked_at < stale_before:
                row.locked_at = now
                row.save(update_fields=["locked_at"])
                return row
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry later.",
                code=f"{error_prefix}-409-IDEMPOTENCY-KEY-IN-USE",
                details={"idempotency_key": key},
            )
        return StoredResponse(status=row.response_status or 200, body=row.response_body)


def _reclaim(
    row: IdempotencyKey, *, fingerprint: str, method: str, path: str, now: Any, ttl: timedelta
) -> None:
    row.request_fingerprint = fingerprint
    row.method = method
    row.path = path
    row.state = IdempotencyKey.State.IN_FLIGHT
    row.response_status = None
    row.response_body = None
    row.locked_at = now
    row.expires_at = now + ttl
    row.save()


def idempotency_key_complete(*, claim: IdempotencyKey, status: int, body: Any) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, locked_at=claim.locked_at).update(
        state=IdempotencyKey.State.COMPLETED, response_status=status, response_body=body
    )


def idempotency_key_release(*, claim: IdempotencyKey) -> None:
    """Forget a claim whose request failed on our side, so the client's retry runs."""
    IdempotencyKey.objects.filter(pk=claim.pk, locked_at=claim.locked_at).delete()


def idempotency_key_purge_expired() -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


Handler = Callable[..., Response]


def idempotent(handler: Handler) -> Handler:
    """Decorate an APIView's unsafe method (post/put/patch/delete)."""

    @wraps(handler)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        prefix = getattr(view, "error_prefix", DEFAULT_PREFIX)
        if not _KEY_RE.match(key):
            raise InvalidInput(
                "Idempotency-Key must be 1-255 visible ASCII characters.",
                code=f"{prefix}-400-INVALID-PAYLOAD",
                details={"fields": {HEADER: ["Invalid key."]}},
            )
        # Keys are per caller.
        owner = principal_key(request.user) or "anonymous"
        claim = idempotency_key_claim(
            owner=owner,
            key=key,
            fingerprint=request_fingerprint(
                method=request.method or "", path=request.path, body=request.data
            ),
            method=request.method or "",
            path=request.path,
            error_prefix=prefix,
        )
        if isinstance(claim, StoredResponse):
            return Response(claim.body, status=claim.status, headers={REPLAYED_HEADER: "true"})

        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:
            response = view.handle_exception(exc)
        if response.status_code >= 500:
            idempotency_key_release(claim=claim)
        else:
            idempotency_key_complete(
                claim=claim,
                status=response.status_code,
                body=without_shown_once_secrets(response.data),
            )
        return response

    setattr(wrapper, "accepts_idempotency_key", True)  # noqa: B010 (the schema reads it)
    return wrapper
