from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings

from bookings import services
from bookings.errors import HoldExpired
from bookings.models import Booking, BookingHold
from tests.bookings.factories import HoldFactory, ResourceFactory
from tests.helpers import error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory


def confirm_url(hold_id) -> str:
    return f"/api/v1/bookings/holds/{hold_id}/confirm"


@pytest.mark.django_db
def test_confirm_is_idempotent(customer, customer_client, resource):
    hold = HoldFactory(holder=customer, resource=resource)
    first = customer_client.post(confirm_url(hold.pk))
    assert first.status_code == 201, first.content
    second = customer_client.post(confirm_url(hold.pk))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Booking.objects.count() == 1
    hold.refresh_from_db()
    assert (hold.status, hold.occupies_slot) == ("CONFIRMED", True)


@pytest.mark.django_db
def test_someone_elses_hold_looks_missing(customer, resource):
    hold = HoldFactory(holder=customer, resource=resource)
    stranger = token_client(UserFactory(username="mallory", groups=["Booking client"]))
    response = stranger.post(confirm_url(hold.pk))
    assert (response.status_code, error_of(response)["code"]) == (404, "BKG-404-HOLD-NOT-FOUND")
    assert stranger.post(confirm_url("x1")).status_code == 400


@pytest.mark.django_db
def test_a_late_confirm_within_the_grace_period_still_wins(customer, customer_client, resource):
    hold = HoldFactory(holder=customer, resource=resource)
    with time_machine.travel(hold.expires_at + timedelta(seconds=20)):
        assert customer_client.post(confirm_url(hold.pk)).status_code == 201


@pytest.mark.django_db
def test_confirm_after_expiry_is_410(customer, customer_client, resource):
    hold = HoldFactory(holder=customer, resource=resource)
    with time_machine.travel(services.hold_confirm_deadline(hold) + timedelta(seconds=1)):
        response = customer_client.post(confirm_url(hold.pk))
        assert (response.status_code, error_of(response)["code"]) == (410, "BKG-410-HOLD-EXPIRED")
        assert services.booking_hold_expire(hold_id=hold.pk) == "expired"
        again = customer_client.post(confirm_url(hold.pk))
        assert (again.status_code, error_of(again)["code"]) == (410, "BKG-410-HOLD-EXPIRED")
    assert not Booking.objects.exists()


@pytest.mark.django_db(transaction=True)
# One customer holds twelve slots to race twelve times; the per-client cap is not the subject.
@override_settings(BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT=100)
def test_confirm_and_expire_racing_on_the_deadline_never_both_win():
    """At the deadline both are legal; the hold's row lock decides, and exactly one wins."""
    customer = UserFactory(username="racer", groups=["Booking client"])
    resource = ResourceFactory()
    holds = [HoldFactory(holder=customer, resource=resource, hour=h) for h in range(6, 18)]
    deadline = services.hold_confirm_deadline(holds[0])
    outcomes: dict[int, list[str]] = {}
    with time_machine.travel(deadline, tick=False):
        for hold in holds:
            BookingHold.objects.filter(pk=hold.pk).update(expires_at=holds[0].expires_at)

            def act(n: int, hold_id: int = hold.pk) -> str:
                if n == 0:
                    try:
                        services.booking_hold_confirm(hold_id=hold_id, customer=customer)
                        return "confirmed"
                    except HoldExpired:
                        return "confirm_refused"
                return services.booking_hold_expire(hold_id=hold_id)

            outcomes[hold.pk] = sorted(run_concurrently(act, 2))
    for hold in holds:
        hold.refresh_from_db()
        result = outcomes[hold.pk]
        if hold.status == "CONFIRMED":
            assert result == ["already_confirmed", "confirmed"]
            assert Booking.objects.filter(hold=hold).count() == 1
        else:
            assert hold.status == "EXPIRED"
            assert result == ["confirm_refused", "expired"]
            assert not Booking.objects.filter(hold=hold).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirms_of_one_hold_make_one_booking():
    customer = UserFactory(username="doubleclick", groups=["Booking client"])
    hold = HoldFactory(holder=customer, resource=ResourceFactory())
    results = run_concurrently(
        lambda n: token_client(customer).post(confirm_url(hold.pk)).status_code, 6
    )
    assert sorted(results) == [200] * 5 + [201]
    assert Booking.objects.filter(hold=hold).count() == 1
