"""Standard Webhooks signatures for integration deliveries (standardwebhooks.com).

Each delivery carries `webhook-id` (the event's id, the same on every retry and replay),
`webhook-timestamp` (seconds, at this attempt) and `webhook-signature`: `v1,` + base64 of
HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64-decoded bytes after its
`whsec_` prefix; one signature per active secret, space-separated, so a receiver holding
either the old or the new secret verifies during a rotation's grace period.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits; the specification asks for 24 to 64
ROTATION_GRACE = timedelta(hours=24)


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_entry(secret: str) -> dict[str, Any]:
    return {"secret": secret, "created_at": timezone.now().isoformat(), "expires_at": None}


def rotated(entries: list[dict[str, Any]], new_secret: str) -> list[dict[str, Any]]:
    """The integration's secrets after a rotation: the new one first; the ones that were
    current sign for 24 more hours; ones already expired are dropped."""
    now = timezone.now()
    grace_ends = (now + ROTATION_GRACE).isoformat()
    kept = []
    for entry in entries:
        expires_at = entry.get("expires_at")
        if expires_at is None:
            kept.append({**entry, "expires_at": grace_ends})
        elif datetime.fromisoformat(expires_at) > now:
            kept.append(entry)
    return [secret_entry(new_secret), *kept]


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets_in_use: list[str], webhook_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(timezone.now().timestamp()) if timestamp is None else timestamp
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp)}
    if secrets_in_use:
        headers["webhook-signature"] = " ".join(
            signature(secret, webhook_id, timestamp, body) for secret in secrets_in_use
        )
    return headers
