"""A hold is one statement on PostgreSQL (the hold and its audit row), with the exclusion
constraint and the client's cap places as the checks; what that statement cannot settle
(overdue holds in the way, the client's own racing requests) goes the locked way and ends
the same: the cap kept, the slot never double-held, the same error codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import services
from bookings.errors import TooManyActiveHolds
from bookings.models import BookingHold
from opsconsole.models import AuditEvent
from tests.bookings.factories import ResourceFactory, slot
from tests.helpers import run_concurrently, token_client
from tests.opsconsole.factories import UserFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement hold is PostgreSQL's"
)


def hold_at(customer, resource, hour: int) -> BookingHold:
    start, end = slot(hour)
    return services.booking_hold_create(
        resource_id=resource.pk, start_time=start, end_time=end, holder=customer
    )


def make_overdue(*holds: BookingHold) -> None:
    # Past their 5:00 but not yet seen by the expiry worker: still ACTIVE, in their grace.
    BookingHold.objects.filter(pk__in=[h.pk for h in holds]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)  # outside a transaction, as the API calls it
def test_a_free_slot_is_held_in_one_statement_with_its_audit_row():
    customer = UserFactory(username="quick", groups=["Booking client"])
    resource = ResourceFactory()
    with CaptureQueriesContext(connection) as queries:
        hold = hold_at(customer, resource, 9)
    assert len(queries) == 1 and queries[0]["sql"].startswith("WITH resource AS")
    stored = BookingHold.objects.get(pk=hold.pk)
    assert (stored.status, stored.occupies_slot, stored.cap_slot) == ("ACTIVE", True, 1)
    assert stored.expires_at == hold.expires_at
    audit = AuditEvent.objects.get(event="booking.hold.created")
    assert (audit.object_type, audit.object_id) == ("bookings.bookinghold", str(hold.pk))
    assert audit.after_state == stored.state()
    assert audit.actor_user_id == customer.pk
    assert audit.metadata["resource_id"] == resource.pk
    # Each further hold takes the client's next place.
    assert [hold_at(customer, resource, h).cap_slot for h in (11, 13)] == [2, 3]
    with pytest.raises(TooManyActiveHolds):
        hold_at(customer, resource, 15)
    assert BookingHold.objects.filter(holder=customer).count() == 3


@pytest.mark.django_db
def test_overdue_holds_give_their_places_back_and_stay_confirmable():
    customer = UserFactory(username="slow-payer", groups=["Booking client"])
    resource = ResourceFactory()
    overdue = [hold_at(customer, resource, h) for h in (8, 10, 12)]
    make_overdue(*overdue)
    fresh = hold_at(customer, resource, 14)  # all three places were taken: the locked way
    assert fresh.cap_slot in {1, 2, 3}
    rows = BookingHold.objects.filter(pk__in=[h.pk for h in overdue])
    assert set(rows.values_list("status", "cap_slot")) == {("ACTIVE", None)}
    # In its grace an overdue hold still becomes a booking.
    confirmation = services.booking_hold_confirm(hold_id=overdue[0].pk, customer=customer)
    assert confirmation.created


@pytest.mark.django_db
def test_an_overdue_hold_in_the_slot_is_expired_and_the_slot_held_again():
    first = UserFactory(username="left", groups=["Booking client"])
    second = UserFactory(username="came", groups=["Booking client"])
    resource = ResourceFactory()
    old = hold_at(first, resource, 9)
    old.expires_at = timezone.now() - timedelta(seconds=30)
    BookingHold.objects.filter(pk=old.pk).update(expires_at=old.expires_at)
    new = hold_at(second, resource, 9)
    assert BookingHold.objects.get(pk=old.pk).status == "EXPIRED"
    assert BookingHold.objects.get(pk=new.pk).occupies_slot
    assert AuditEvent.objects.filter(event="booking.hold.expired", object_id=str(old.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_racing_requests_of_one_client_with_overdue_places_still_hold_at_most_three():
    customer = UserFactory(username="racer", groups=["Booking client"])
    resource = ResourceFactory()
    make_overdue(*[hold_at(customer, resource, h) for h in (1, 2)])  # places 1 and 2

    def hold(n: int) -> int:
        start, end = slot(hour=4 + n)
        response = token_client(customer).post(
            "/api/v1/bookings/holds",
            {"resource_id": resource.pk, "start_time": start, "end_time": end},
            format="json",
        )
        return response.status_code

    # One request takes place 3 in one statement; the rest meet its place and go the
    # locked way, where the overdue holds give places 1 and 2 back: three live holds.
    assert sorted(run_concurrently(hold, 8)) == [201] * 3 + [409] * 5
    live = BookingHold.objects.filter(
        holder=customer, status="ACTIVE", expires_at__gt=timezone.now()
    )
    assert sorted(live.values_list("cap_slot", flat=True)) == [1, 2, 3]


@pytest.mark.django_db
def test_the_locked_way_answers_too_many_when_a_racer_took_the_last_place_after_its_count():
    from bookings.services.holds import _free_cap_slot

    customer = UserFactory(username="late", groups=["Booking client"])
    resource = ResourceFactory()
    # As if a one-statement hold of the same client committed between the locked way's
    # count (two live holds) and its look at the places: all three are taken now.
    for hour in (8, 10, 12):
        hold_at(customer, resource, hour)
    with pytest.raises(TooManyActiveHolds):
        _free_cap_slot(customer.pk, now=timezone.now(), cap=3)
