"""Who may cancel when (issue #33): a customer cancels a CONFIRMED booking until
BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES before its start; once checked in or later, only staff
(the API with the operate permission, or the admin action) can, with a reason. A refusal is
a 409 envelope and changes nothing: no refund, no audit row, the booking as it was."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from bookings.models import Booking
from bookings.services import booking_check_in, booking_offline_payment_record
from opsconsole.models import AuditEvent
from payments.models import Refund
from tests.bookings.factories import BookingFactory
from tests.helpers import action_post, error_of

BOOKINGS_ADMIN = "/admin/bookings/booking/"


def cancel_url(booking_id: int) -> str:
    return f"/api/v1/bookings/{booking_id}/cancel"


def stripe_refund_ok(stripe) -> None:
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"id": "re_1", "object": "refund", "status": "succeeded"}
    )


def stripe_refund_down(stripe) -> None:
    stripe.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is down"}}, status=500
    )


def checked_in(booking: Booking, operator) -> Booking:
    with time_machine.travel(booking.start_time + timedelta(minutes=5)):
        return booking_check_in(booking_id=booking.pk, actor=operator, reason="arrived")


def cash_booking(customer, resource, operator) -> Booking:
    booking = BookingFactory(customer=customer, resource=resource)
    booking_offline_payment_record(
        booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=operator
    )
    return Booking.objects.get(pk=booking.pk)


def assert_untouched(booking: Booking, status: str) -> None:
    fresh = Booking.objects.get(pk=booking.pk)
    assert (fresh.status, fresh.cancellation_step, fresh.cancelled_by) == (status, "", "")
    assert not Refund.objects.exists()
    cancel_events = AuditEvent.objects.filter(event__startswith="booking.cancel")
    assert not cancel_events.exists()


@pytest.mark.django_db
def test_a_customer_cannot_cancel_a_checked_in_cash_booking(
    customer, customer_client, resource, operator
):
    booking = checked_in(cash_booking(customer, resource, operator), operator)
    with time_machine.travel(booking.start_time + timedelta(minutes=10)):
        response = customer_client.post(cancel_url(booking.pk), {"reason": "x"}, format="json")
    assert response.status_code == 409, response.content
    error = error_of(response)
    assert error["code"] == "BKG-409-BOOKING-NOT-CANCELLABLE"
    assert error["details"] == {"status": "CHECKED_IN"}
    assert_untouched(booking, "CHECKED_IN")


@pytest.mark.django_db
def test_a_customer_cannot_cancel_a_checked_in_card_booking_and_stripe_is_not_called(
    customer, customer_client, resource, operator, stripe
):
    stripe_refund_ok(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("80.00"))
    booking = checked_in(booking, operator)
    # Checked in early (the window opens before the start): still not the customer's to undo.
    with time_machine.travel(booking.start_time - timedelta(minutes=30)):
        response = customer_client.post(cancel_url(booking.pk), {}, format="json")
    assert (response.status_code, error_of(response)["code"]) == (
        409,
        "BKG-409-BOOKING-NOT-CANCELLABLE",
    )
    assert stripe.log == []
    assert_untouched(booking, "CHECKED_IN")
    assert Booking.objects.get(pk=booking.pk).payment_status == "PAID"


@pytest.mark.django_db
def test_the_customers_window_closes_at_the_cutoff(
    customer, customer_client, resource, settings, stripe
):
    settings.BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES = 120
    stripe_refund_ok(stripe)
    late = BookingFactory(customer=customer, resource=resource, paid=Decimal("30.00"), hour=10)
    with time_machine.travel(late.start_time - timedelta(minutes=119)):
        refused = customer_client.post(cancel_url(late.pk), {}, format="json")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "BKG-409-CANCELLATION-WINDOW-CLOSED"
    assert error["details"]["cancel_by"] == (late.start_time - timedelta(hours=2)).isoformat()
    assert_untouched(late, "CONFIRMED")

    settings.BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES = 0  # the default: until the start
    with time_machine.travel(late.start_time + timedelta(seconds=1)):
        after_start = customer_client.post(cancel_url(late.pk), {}, format="json")
    assert error_of(after_start)["code"] == "BKG-409-CANCELLATION-WINDOW-CLOSED"
    with time_machine.travel(late.start_time - timedelta(minutes=1)):
        in_time = customer_client.post(cancel_url(late.pk), {}, format="json")
    assert in_time.status_code == 200, in_time.content
    assert in_time.json()["refund_processed"] is True


@pytest.mark.django_db
def test_an_operator_cancels_a_checked_in_card_booking_with_a_reason(
    customer, resource, operator, operator_client, stripe
):
    stripe_refund_ok(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("80.00"))
    booking = checked_in(booking, operator)
    with time_machine.travel(booking.start_time + timedelta(minutes=20)):
        no_reason = operator_client.post(cancel_url(booking.pk), {}, format="json")
        assert (no_reason.status_code, error_of(no_reason)["code"]) == (
            400,
            "BKG-400-INVALID-PAYLOAD",
        )
        assert_untouched(booking, "CHECKED_IN")
        response = operator_client.post(
            cancel_url(booking.pk), {"reason": "court flooded"}, format="json"
        )
    assert response.status_code == 200, response.content
    assert (response.json()["booking"]["status"], response.json()["refund_processed"]) == (
        "CANCELLED",
        True,
    )
    assert Refund.objects.get().status == "COMPLETED"
    assert AuditEvent.objects.get(event="booking.cancelled").reason == "court flooded"


@pytest.mark.django_db
def test_the_admin_action_cancels_a_checked_in_cash_booking_and_owes_the_refund(
    customer, resource, operator, admin_client
):
    booking = checked_in(cash_booking(customer, resource, operator), operator)
    with time_machine.travel(booking.start_time + timedelta(minutes=30)):
        # Staff sign in on the day: a session lasts a shift (SESSION_COOKIE_AGE).
        admin_client.force_login(User.objects.get(username="root"))
        action_post(
            admin_client, BOOKINGS_ADMIN, "cancel", [booking.pk], confirm="yes", reason="no lights"
        )
    fresh = Booking.objects.get(pk=booking.pk)
    assert (fresh.status, fresh.cancellation_reason) == ("CANCELLED", "no lights")
    assert Refund.objects.get().status == "OWED"


@pytest.mark.django_db
def test_a_customer_cannot_push_a_staff_cancellation_under_review_to_a_refund(
    customer, customer_client, resource, operator, operator_client, stripe
):
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("80.00"))
    booking = checked_in(booking, operator)
    stripe_refund_down(stripe)
    with time_machine.travel(booking.start_time + timedelta(minutes=20)):
        stuck = operator_client.post(cancel_url(booking.pk), {"reason": "leak"}, format="json")
        assert stuck.status_code == 503
        stripe_refund_ok(stripe)
        refused = customer_client.post(cancel_url(booking.pk), {}, format="json")
    assert (refused.status_code, error_of(refused)["code"]) == (
        409,
        "BKG-409-BOOKING-NOT-CANCELLABLE",
    )
    assert Booking.objects.get(pk=booking.pk).status == "CANCELLING"
    assert len(stripe.log) == 1  # only the operator's failed attempt
