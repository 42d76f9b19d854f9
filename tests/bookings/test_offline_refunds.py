"""A booking paid offline is refunded offline: the refund is owed to the customer until staff
record who paid it out, how and when. Never a call to Stripe."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.services import booking_offline_payment_record
from opsconsole.models import AuditEvent
from payments.models import Payment, Refund
from payments.offline_refunds import RefundNotOwed, refund_settle_offline
from payments.workers import RefundRetryWorker
from recovery.inbox import groups as inbox
from tests.bookings.factories import BookingFactory
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker

REFUNDS = "/admin/payments/refund/"


@pytest.fixture
def cash_booking(customer, resource, operator):
    booking = BookingFactory(customer=customer, resource=resource)
    booking_offline_payment_record(
        booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=operator
    )
    return Booking.objects.get(pk=booking.pk)


def settle_form(**fields) -> dict:
    when = timezone.localtime(timezone.now() - timedelta(hours=1))
    return {
        "payout_method": "cash",
        "payout_reference": "till 2, receipt 881",
        "paid_out_at": when.strftime("%Y-%m-%d %H:%M"),
        "reason": "paid back at the desk",
        **fields,
    }


@pytest.mark.django_db
def test_cancelling_a_cash_booking_owes_a_refund_and_never_calls_stripe(
    cash_booking, customer, stripe
):
    response = token_client(customer).post(
        f"/api/v1/bookings/{cash_booking.pk}/cancel", {"reason": "ill"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["booking"]["status"], body["refund_processed"], body["refund_owed"]) == (
        "CANCELLED",
        False,
        True,
    )
    assert stripe.log == []  # nothing went to Stripe
    refund = Refund.objects.get()
    assert (refund.status, refund.provider_refund_id, refund.amount) == ("OWED", "", Decimal("25"))
    assert AuditEvent.objects.filter(event="payments.refund.owed").count() == 1
    # The retry worker never picks it up: only staff can pay it back.
    assert run_worker(RefundRetryWorker).claimed == 0
    groups = inbox.failure_groups(source="offline_refund")
    assert [(g.count, g.impact.reason) for g in groups] == [(1, "25.00 EUR owed to a customer")]


@pytest.mark.django_db
def test_staff_settle_it_in_the_admin_with_who_how_and_when(cash_booking, customer, client):
    token_client(customer).post(f"/api/v1/bookings/{cash_booking.pk}/cancel", {}, format="json")
    refund = Refund.objects.get()
    operator = UserFactory(username="olga", groups=["Support operator"], is_staff=True)
    client.force_login(operator)

    no_reason = client.post(f"{REFUNDS}{refund.pk}/change/", settle_form(reason=""))
    assert no_reason.status_code == 200  # the form again, nothing written
    future = timezone.localtime(timezone.now() + timedelta(days=2))
    too_late = client.post(
        f"{REFUNDS}{refund.pk}/change/", settle_form(paid_out_at=future.strftime("%Y-%m-%d %H:%M"))
    )
    assert b"A payout cannot be in the future." in too_late.content
    refund.refresh_from_db()
    assert refund.status == "OWED"

    done = client.post(f"{REFUNDS}{refund.pk}/change/", settle_form())
    assert done.status_code == 302, done.content[:500]
    refund.refresh_from_db()
    assert (refund.status, refund.payout_method, refund.paid_out_by) == (
        "COMPLETED",
        "cash",
        "olga",
    )
    assert refund.payout_reference == "till 2, receipt 881"
    assert refund.payment.status == Payment.Status.REFUNDED
    event = AuditEvent.objects.get(event="payments.refund.settled_offline")
    assert (event.actor, event.reason) == ("olga", "paid back at the desk")
    assert event.before_state["status"] == "OWED"
    assert event.after_state["paid_out_by"] == "olga"
    assert inbox.failure_groups(source="offline_refund") == []
    # Settled once: the page no longer offers a change, and the service refuses a second.
    assert client.post(f"{REFUNDS}{refund.pk}/change/", settle_form()).status_code == 403
    with pytest.raises(RefundNotOwed):
        refund_settle_offline(
            refund_id=refund.pk,
            method="cash",
            reference="again",
            paid_out_at=timezone.now(),
            actor=operator,
            reason="twice",
        )


@pytest.mark.django_db
def test_a_viewer_cannot_settle_an_owed_refund(cash_booking, customer, client):
    token_client(customer).post(f"/api/v1/bookings/{cash_booking.pk}/cancel", {}, format="json")
    refund = Refund.objects.get()
    viewer = UserFactory(username="vera", groups=["Support viewer"], is_staff=True)
    client.force_login(viewer)
    response = client.post(f"{REFUNDS}{refund.pk}/change/", settle_form())
    assert response.status_code == 403
    refund.refresh_from_db()
    assert refund.status == "OWED"


@pytest.mark.django_db
def test_a_card_refund_still_goes_to_stripe(customer, resource, stripe):
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json({"id": "re_card"})
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("30.00"))
    response = token_client(customer).post(
        f"/api/v1/bookings/{booking.pk}/cancel", {}, format="json"
    )
    assert response.json()["refund_owed"] is False
    assert Refund.objects.get().provider_refund_id == "re_card"
