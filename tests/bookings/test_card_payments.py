"""Card payments reach bookings through Stripe's webhooks: a payment whose metadata names a
booking pays it; one for a booking already paid or cancelled is kept for a refund decision;
a partial refund leaves the payment partly refunded; a dispute raises a critical alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking
from opsconsole.failures import failure_sources
from opsconsole.models import Alert, AuditEvent
from payments.models import HostedCheckoutSession, Payment, Refund
from recovery.inbox import groups as inbox
from tests.bookings.factories import BookingFactory
from tests.helpers import token_client
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import SECRET, deliver


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def intent_succeeded(event_id: str, intent_id: str, **metadata) -> dict:
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": 3000,
                "amount_received": 3000,
                "currency": "eur",
                "metadata": metadata,
            }
        },
    }


@pytest.mark.django_db
def test_a_card_payment_for_a_booking_pays_it_once(client, customer, resource):
    booking = BookingFactory(customer=customer, resource=resource)
    session = HostedSessionFactory(reference="hcs_booking_1")
    event = intent_succeeded(
        "evt_pi_1", "pi_1", booking_id=str(booking.pk), reference="hcs_booking_1"
    )
    assert deliver(client, event).json() == {"received": True}
    assert deliver(client, event).json() == {"received": True, "duplicate": True}
    booking.refresh_from_db()
    payment = Payment.objects.get()
    assert (booking.payment_status, booking.payment_id) == (Booking.PaymentStatus.PAID, payment.pk)
    assert (payment.amount, payment.method, payment.provider_payment_id) == (
        Decimal("30.00"),
        "card",
        "pi_1",
    )
    assert payment.unapplied_reason == ""
    session.refresh_from_db()
    assert session.status == HostedCheckoutSession.Status.COMPLETED
    assert AuditEvent.objects.filter(event="booking.payment_attached").count() == 1
    # The same payment in a second event (Stripe sends both) is not a second payment.
    deliver(client, intent_succeeded("evt_pi_1b", "pi_1", booking_id=str(booking.pk)))
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_a_payment_for_a_paid_or_cancelled_booking_is_kept_for_a_refund_decision(
    client, customer, resource, operator_client, stripe
):
    paid = BookingFactory(customer=customer, resource=resource, hour=9, paid=Decimal("30.00"))
    cancelled = BookingFactory(customer=customer, resource=resource, hour=12)
    token_client(customer).post(f"/api/v1/bookings/{cancelled.pk}/cancel", {}, format="json")
    deliver(client, intent_succeeded("evt_pi_2", "pi_late_a", booking_id=str(paid.pk)))
    deliver(client, intent_succeeded("evt_pi_3", "pi_late_b", booking_id=str(cancelled.pk)))

    kept = dict(
        Payment.objects.filter(method="card").values_list("provider_payment_id", "unapplied_reason")
    )
    assert kept["pi_late_a"] == f"booking {paid.pk} is already PAID"
    assert kept["pi_late_b"] == f"booking {cancelled.pk} is CANCELLED"
    paid.refresh_from_db()
    first_payment = Payment.objects.get(pk=paid.payment_id)
    assert first_payment.provider_payment_id == f"pi_{paid.pk}"  # still its first payment
    groups = inbox.failure_groups(source="unapplied_payment")
    assert sum(g.count for g in groups) == 2

    # The refund decision: the source's replay (as the bulk engine runs it once a second
    # operator approved) refunds the whole payment at Stripe, with the refund's key.
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json({"id": "re_unapplied"})
    unapplied = Payment.objects.get(provider_payment_id="pi_late_b")
    outcome = failure_sources.get("unapplied_payment").replay(unapplied.pk, "operator", "refund")
    assert outcome == "unapplied payment → refund COMPLETED"
    unapplied.refresh_from_db()
    assert unapplied.status == Payment.Status.REFUNDED
    assert Refund.objects.get(payment=unapplied).provider_refund_id == "re_unapplied"
    request, _ = stripe.log[-1]
    assert request.form["payment_intent"] == "pi_late_b"
    assert (
        request.headers["Idempotency-Key"] == f"refund:{Refund.objects.get(payment=unapplied).pk}"
    )
    assert sum(g.count for g in inbox.failure_groups(source="unapplied_payment")) == 1


@pytest.mark.django_db
def test_a_partial_refund_leaves_the_payment_partly_refunded(client, customer, resource):
    booking = BookingFactory(customer=customer, resource=resource)
    deliver(client, intent_succeeded("evt_pi_4", "pi_4", booking_id=str(booking.pk)))

    def charge_refunded(event_id: str, cents: int) -> dict:
        return {
            "id": event_id,
            "type": "charge.refunded",
            "data": {"object": {"id": "ch_4", "payment_intent": "pi_4", "amount_refunded": cents}},
        }

    deliver(client, charge_refunded("evt_rf_1", 1000))
    payment = Payment.objects.get(provider_payment_id="pi_4")
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Decimal("10.00"))
    deliver(client, charge_refunded("evt_rf_1", 3000))  # the same event again: no change
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("10.00")
    deliver(client, charge_refunded("evt_rf_2", 3000))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("30.00"))


@pytest.mark.django_db
def test_a_dispute_raises_a_critical_alert(client, customer, resource):
    booking = BookingFactory(customer=customer, resource=resource)
    deliver(client, intent_succeeded("evt_pi_5", "pi_5", booking_id=str(booking.pk)))
    dispute = {
        "id": "evt_dp_1",
        "type": "charge.dispute.created",
        "data": {
            "object": {
                "id": "dp_1",
                "payment_intent": "pi_5",
                "amount": 3000,
                "currency": "eur",
                "reason": "fraudulent",
                "status": "needs_response",
            }
        },
    }
    assert deliver(client, dispute).json() == {"received": True}
    alert = Alert.objects.get(kind="payment_disputed")
    assert alert.severity == "critical"
    assert alert.object_id == str(Payment.objects.get(provider_payment_id="pi_5").pk)
    assert "dp_1" in alert.message and "fraudulent" in alert.message


@pytest.mark.django_db
def test_a_refund_stripe_later_fails_raises_a_critical_alert(client, customer, resource, stripe):
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json({"id": "re_later"})
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("30.00"))
    token_client(customer).post(f"/api/v1/bookings/{booking.pk}/cancel", {}, format="json")
    refund = Refund.objects.get(provider_refund_id="re_later")
    assert refund.status == Refund.Status.COMPLETED

    def refund_updated(event_id: str, status: str) -> dict:
        return {
            "id": event_id,
            "type": "refund.updated",
            "data": {
                "object": {
                    "id": "re_later",
                    "status": status,
                    "failure_reason": "expired_or_canceled_card" if status == "failed" else None,
                }
            },
        }

    assert deliver(client, refund_updated("evt_ru_1", "succeeded")).json() == {"received": True}
    assert not Alert.objects.filter(kind="refund_reversed").exists()
    deliver(client, refund_updated("evt_ru_2", "failed"))
    alert = Alert.objects.get(kind="refund_reversed")
    assert alert.severity == "critical"
    assert "expired_or_canceled_card" in alert.message
    assert AuditEvent.objects.filter(event="payments.refund.updated_by_provider").count() == 2
