"""Anymail's Resend backend, sending our idempotency key as Resend documents it.

Resend deduplicates a POST /emails that carries the same `Idempotency-Key` header within 24
hours, so a send retried after a timeout (the email left, the answer was lost) is not
delivered twice. Anymail has no setting for request headers; this subclass adds the one.
"""

from __future__ import annotations

from typing import Any

from anymail.backends.resend import EmailBackend as AnymailResendBackend
from anymail.backends.resend import ResendPayload

IDEMPOTENCY_KEY_MAX = 256  # Resend's documented limit


class EmailBackend(AnymailResendBackend):
    def build_message_payload(self, message: Any, defaults: dict) -> ResendPayload:
        payload = super().build_message_payload(message, defaults)
        key = getattr(message, "idempotency_key", "")
        if key:
            payload.headers["Idempotency-Key"] = str(key)[:IDEMPOTENCY_KEY_MAX]
        return payload
