from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.utils import timezone

from payments import services
from payments.models import HostedCheckoutSession

_references = count(1)


def make_session(**fields) -> HostedCheckoutSession:
    """A session whose checkout link expired unpaid a minute ago: due for recovery."""
    expires_at = fields.pop("expires_at", timezone.now() - timedelta(minutes=1))
    session = services.hosted_session_create(
        reference=fields.pop("reference", f"hcs_{next(_references):05d}"),
        amount=fields.pop("amount", Decimal("49.90")),
        currency="EUR",
        customer_email=fields.pop("customer_email", "ana@example.test"),
        customer_phone=fields.pop("customer_phone", "+3519100000"),
        checkout_url="https://checkout.example.test/pay/original",
        expires_at=expires_at,
        actor="test",
    )
    if fields:
        HostedCheckoutSession.objects.filter(pk=session.pk).update(**fields)
        session.refresh_from_db()
    return session


@pytest.fixture
def providers(httpserver, settings):
    """The checkout provider, email and SMS channels all at one local HTTP server."""
    settings.PAYMENTS_CHECKOUT_URL = httpserver.url_for("/checkout")
    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 1
    settings.NOTIFICATION_CHANNELS = {
        "email": {"url": httpserver.url_for("/email"), "api_key": "email-key"},
        "sms": {"url": httpserver.url_for("/sms"), "api_key": "sms-key"},
    }
    return httpserver


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
