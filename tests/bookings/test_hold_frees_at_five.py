"""docs/runbooks/bookings-payments-notifications.md: a hold frees its slot at 5:00, whether or
not the expiry worker has run; only a confirm already in flight keeps its grace."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction

from bookings import services
from bookings.errors import HoldExpired, SlotUnavailable
from bookings.models import BookingHold
from tests.bookings.factories import HoldFactory, slot
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_a_new_hold_takes_the_slot_at_five_minutes_without_the_worker(customer, resource):
    first = HoldFactory(holder=customer, resource=resource, hour=10)
    other = UserFactory(username="bea", groups=["Booking client"])
    start, end = slot(10)
    with (
        time_machine.travel(first.expires_at - timedelta(seconds=1)),
        pytest.raises(SlotUnavailable),
    ):
        services.booking_hold_create(
            resource_id=resource.pk, start_time=start, end_time=end, holder=other
        )
    with time_machine.travel(first.expires_at + timedelta(seconds=1)):  # 5:01, in the grace
        second = services.booking_hold_create(
            resource_id=resource.pk, start_time=start, end_time=end, holder=other
        )
        first.refresh_from_db()
        assert (first.status, first.occupies_slot) == ("EXPIRED", False)
        # The first holder's late confirm, after the slot was taken again, loses.
        with pytest.raises(HoldExpired):
            services.booking_hold_confirm(hold_id=first.pk, customer=customer)
    assert second.status == "ACTIVE"


@pytest.mark.django_db(transaction=True)
def test_a_confirm_in_flight_keeps_its_grace(resource):
    customer = UserFactory(username="carla", groups=["Booking client"])
    other = UserFactory(username="bea", groups=["Booking client"])
    first = HoldFactory(holder=customer, resource=resource, hour=10)
    start, end = slot(10)
    locked, release = threading.Event(), threading.Event()

    def confirm_in_flight() -> None:
        try:
            with transaction.atomic():
                BookingHold.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=confirm_in_flight)
    thread.start()
    assert locked.wait(10)
    try:
        with (
            time_machine.travel(first.expires_at + timedelta(seconds=1)),
            pytest.raises(SlotUnavailable),
        ):
            services.booking_hold_create(
                resource_id=resource.pk, start_time=start, end_time=end, holder=other
            )
    finally:
        release.set()
        thread.join(10)
    assert BookingHold.objects.get(pk=first.pk).status == "ACTIVE"
