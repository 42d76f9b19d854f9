"""Checking in (CHECKED_IN, docs/runbooks/bookings-payments-notifications.md): a confirmed
booking within its window, by staff, from the API and the admin, audited; outside the window or
in another state, refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User

from bookings.models import Booking
from opsconsole.models import AuditEvent
from tests.bookings.factories import BookingFactory
from tests.helpers import action_post, error_of


def check_in_url(booking_id: int) -> str:
    return f"/api/v1/bookings/{booking_id}/check-in"


@pytest.mark.django_db
def test_staff_check_a_customer_in_within_the_window_once(
    customer, resource, operator_client, customer_client
):
    booking = BookingFactory(customer=customer, resource=resource, hour=10)
    early = operator_client.post(check_in_url(booking.pk), {}, format="json")
    assert error_of(early)["code"] == "BKG-409-NOT-CHECKABLE"  # a day before
    assert customer_client.post(check_in_url(booking.pk), {}, format="json").status_code == 403
    with time_machine.travel(booking.start_time - timedelta(minutes=30)):
        response = operator_client.post(check_in_url(booking.pk), {"reason": "desk"}, format="json")
        again = operator_client.post(check_in_url(booking.pk), {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == again.json()["status"] == "CHECKED_IN"
    assert AuditEvent.objects.filter(event="booking.checked_in").count() == 1
    assert AuditEvent.objects.get(event="booking.checked_in").reason == "desk"


@pytest.mark.django_db
def test_the_admin_checks_in_and_a_cancelled_booking_is_refused(
    customer, resource, admin_client, operator_client
):
    booking = BookingFactory(customer=customer, resource=resource, hour=10)
    with time_machine.travel(booking.start_time + timedelta(minutes=5)):
        # Staff sign in on the day: a session lasts a shift (SESSION_COOKIE_AGE).
        admin_client.force_login(User.objects.get(username="root"))
        action_post(
            admin_client,
            "/admin/bookings/booking/",
            "check_in",
            [booking.pk],
            confirm="yes",
            reason="arrived late",
        )
    assert Booking.objects.get(pk=booking.pk).status == "CHECKED_IN"
    other = BookingFactory(customer=customer, resource=resource, hour=12)
    operator_client.post(f"/api/v1/bookings/{other.pk}/cancel", {"reason": "x"}, format="json")
    with time_machine.travel(other.start_time):
        refused = operator_client.post(check_in_url(other.pk), {}, format="json")
    assert error_of(refused)["details"]["status"] == "CANCELLED"
