"""The stand-in checkout provider and message channels: what they answer, what they got."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

from django.utils import timezone


def checkout_answers(httpserver, *, token: str = "new") -> None:
    expires = (timezone.now() + timedelta(days=1)).isoformat()
    httpserver.expect_request("/checkout", method="POST").respond_with_json(
        {"url": f"https://checkout.example.test/pay/{token}", "expires_at": expires, "id": token}
    )


def channels_answer(httpserver, *, email_status: int = 202, sms_status: int = 202) -> None:
    httpserver.expect_request("/email", method="POST").respond_with_json(
        {"id": "em_1"}, status=email_status
    )
    httpserver.expect_request("/sms", method="POST").respond_with_json(
        {"id": "sms_1"}, status=sms_status
    )


def requests_to(httpserver, path: str) -> list:
    return [request for request, _ in httpserver.log if request.path == path]


# Stripe's webhooks, signed as Stripe signs them.
URL = "/webhooks/stripe"
SECRET = "whsec_test_secret"


def signed(event: dict, secret: str = SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    """Sign as Stripe does: v1 = HMAC-SHA256(secret, "<t>.<payload>")."""
    payload = json.dumps(event).encode()
    t = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={digest}"


def deliver(client, event: dict, **kwargs):
    payload, signature = signed(event, **kwargs)
    return client.post(
        URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
