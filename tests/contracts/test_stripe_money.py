"""Money as Stripe writes it: amounts in the currency's minor unit, whose size depends on the
currency (docs.stripe.com/currencies#minor-units). Events are shaped as Stripe's API
reference shows them and signed with stripe-python's own WebhookSignature; refunds go to a
local server standing in for api.stripe.com through the stripe library."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.models import Payment, WebhookFailure
from payments.refunds import refund_request
from recovery.cases.services import case_search
from recovery.models import RecoveryItem
from tests.contracts.stripe import (
    charge_refunded,
    payment_intent_succeeded,
    send_signed,
)
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory

pytestmark = pytest.mark.usefixtures("stripe_settings")


send = send_signed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("currency", "minor_units", "recorded", "partner_amount"),
    [
        ("jpy", 5000, Decimal("5000"), "5000"),  # zero-decimal: 5000 is five thousand yen
        ("krw", 12000, Decimal("12000"), "12000"),
        ("eur", 5000, Decimal("50.00"), "50.00"),
        ("kwd", 1500, Decimal("1.50"), "1.500"),  # three-decimal: 1500 fils
    ],
)
def test_a_payment_is_recorded_and_sent_to_partners_in_its_currencys_units(
    client, currency, minor_units, recorded, partner_amount
):
    partner = IntegrationFactory(event_types=["payment.succeeded"])
    response = send(client, payment_intent_succeeded(f"pi_{currency}", minor_units, currency))
    assert response.status_code == 200, response.content
    payment = Payment.objects.get(provider_payment_id=f"pi_{currency}")
    assert (payment.amount, payment.currency) == (recorded, currency.upper())
    (told,) = RecoveryItem.objects.filter(integration=partner, event_type="payment.succeeded")
    assert (told.payload["amount"], told.payload["currency"]) == (
        partner_amount,
        currency.upper(),
    )
    # Support staff read it as partners do: 5000 JPY, not 5000.00.
    (found,) = case_search(term=f"pi_{currency}", viewer=UserFactory(is_superuser=True))
    assert f": {partner_amount} {currency.upper()} (" in found["summary"], found


@pytest.mark.django_db(transaction=True)
def test_a_three_decimal_amount_that_cannot_be_kept_exactly_is_not_rounded(client):
    """Stripe requires the last fils digit to be 0; one that is not is kept for a person,
    never recorded rounded."""
    response = send(client, payment_intent_succeeded("pi_odd_fils", 1505, "kwd"))
    assert response.status_code == 200
    assert not Payment.objects.filter(provider_payment_id="pi_odd_fils").exists()
    failure = WebhookFailure.objects.get(event_id="evt_pi_odd_fils")
    assert "1505 KWD minor units need 3 places" in failure.error


@pytest.mark.django_db(transaction=True)
def test_a_yen_refund_and_stripes_charge_refunded_use_whole_yen(client, httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    send(client, payment_intent_succeeded("pi_yen", 5000, "jpy"))
    payment = Payment.objects.get(provider_payment_id="pi_yen")
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"id": "re_yen", "object": "refund", "amount": 2000, "currency": "jpy",
         "status": "succeeded"}
    )  # fmt: skip
    refund = refund_request(payment_id=payment.pk, amount=Decimal("2000"), reason="x", actor="t")
    assert refund.status == "COMPLETED"
    request, _ = httpserver.log[-1]
    assert request.form["amount"] == "2000"  # not 200000

    refunded = charge_refunded("pi_yen", amount=5000, refunded=2000, currency="jpy")
    assert send(client, refunded).status_code == 200
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("2000")
