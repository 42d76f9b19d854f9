"""Producers open hosted checkout sessions (through Stripe Checkout when configured) and
issue vouchers: audited, with an Idempotency-Key, and bad input refused with no change."""

from __future__ import annotations

import pytest

from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession, Voucher
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.payments.providers import checkout_answers

SESSIONS = "/api/v1/billing/sessions"
BODY = {"reference": "ord-77", "amount": "49.90", "currency": "eur"}


@pytest.fixture
def producer_client(db):
    return token_client(UserFactory(username="shop", groups=["Event producer"]))


@pytest.mark.django_db
def test_a_producer_opens_a_session_once_per_idempotency_key(producer_client, providers):
    checkout_answers(providers, token="ord")
    first = producer_client.post(SESSIONS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["reference"], body["amount"], body["currency"]) == ("ord-77", "49.90", "EUR")
    assert body["checkoutUrl"] == "https://checkout.example.test/pay/ord"
    session = HostedCheckoutSession.objects.get()
    assert session.next_retry_at == session.expires_at  # the automation watches it
    again = producer_client.post(SESSIONS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
    taken = producer_client.post(SESSIONS, BODY, format="json")
    assert error_of(taken)["code"] == "PAY-409-SESSION-REFERENCE-TAKEN"
    assert HostedCheckoutSession.objects.count() == 1
    created = AuditEvent.objects.get(event="payments.hosted_session.created")
    assert created.actor == "shop"
    (request, _) = providers.log[0]
    assert request.headers["Idempotency-Key"] == "hosted-session-open:ord-77"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"reference": "a b"}, "reference"),
    ],
)
def test_bad_sessions_are_refused(producer_client, change, field):
    response = producer_client.post(SESSIONS, {**BODY, **change}, format="json")
    assert response.status_code == 400
    assert field in str(error_of(response)["details"])
    assert not HostedCheckoutSession.objects.exists()


@pytest.mark.django_db
def test_no_session_when_the_provider_is_down(producer_client, providers):
    providers.expect_request("/checkout").respond_with_data("down", status=503)
    response = producer_client.post(SESSIONS, BODY, format="json")
    assert response.status_code == 503
    assert error_of(response)["code"] == "PAY-503-DEPENDENCY-UNAVAILABLE"
    assert not HostedCheckoutSession.objects.exists()


@pytest.mark.django_db
def test_stripe_checkout_gets_the_session_as_stripe_documents_it(
    producer_client, httpserver, settings
):
    settings.PAYMENTS_CHECKOUT_PROVIDER = "stripe"
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_checkout"
    settings.STRIPE_CHECKOUT_SUCCESS_URL = "https://shop.example.com/paid"
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_1",
            "expires_at": 1893456000,
        }
    )
    response = producer_client.post(SESSIONS, BODY, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["checkoutUrl"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == "Bearer sk_test_checkout"
    assert request.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert request.headers["Idempotency-Key"] == "hosted-session-open:ord-77"
    form = request.form.to_dict()
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == "4990"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["metadata[reference]"] == "ord-77"
    assert form["payment_intent_data[metadata][reference]"] == "ord-77"
    assert HostedCheckoutSession.objects.get().provider_session_id == "cs_test_1"


@pytest.mark.django_db
def test_a_producer_issues_a_voucher(producer_client):
    response = producer_client.post(
        "/api/v1/vouchers",
        {"description": "Sorry voucher", "value": "15.00", "station_scope": "lisbon-1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    voucher = Voucher.objects.get()
    assert (voucher.value, voucher.station_scope, voucher.status) == (15, "lisbon-1", "issued")
    assert AuditEvent.objects.get(event="payments.voucher.issued").actor == "shop"
    refused = producer_client.post(
        "/api/v1/vouchers", {"description": "x", "value": "-1"}, format="json"
    )
    assert error_of(refused)["code"] == "PAY-400-INVALID-PAYLOAD"
    assert Voucher.objects.count() == 1
