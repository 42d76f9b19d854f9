"""The catalog scheduler (docs/runbooks/incident-response.md): scheduled changes to the
resource catalog apply at their time, once, in order per resource, can be paused, and a
change that keeps failing keeps `consecutive_failures` rising for the alert."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.errors import SlotNotOpen
from bookings.models import CatalogChange, Resource
from bookings.services import booking_hold_create
from bookings.services.catalog import catalog_change_move, catalog_change_schedule
from bookings.workers import CatalogScheduler
from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.workers.metrics import worker_metrics
from recovery.inbox.groups import failure_groups
from tests.bookings.factories import BookingFactory, ResourceFactory, slot
from tests.helpers import run_concurrently
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker


def schedule(resource: Resource, kind: str, *, minutes: float = 0, **fields) -> CatalogChange:
    return catalog_change_schedule(
        resource_id=resource.pk,
        kind=kind,
        apply_at=timezone.now() + timedelta(minutes=minutes),
        actor="merchandising",
        reason="spring catalog",
        **fields,
    )


def consecutive_failures_metric() -> float:
    for family in worker_metrics():
        if family.name == "smplat_catalog_scheduler_consecutive_failures":
            for sample in family.samples:
                if sample.labels["worker"] == "catalog_scheduler":
                    return sample.value
    raise AssertionError("no consecutive_failures sample for catalog_scheduler")


@pytest.mark.django_db
def test_changes_apply_at_their_time_once_and_in_order():
    court = ResourceFactory(price=Decimal("20.00"))
    later = schedule(court, "price_change", minutes=30, price=Decimal("25.00"))
    sooner = schedule(court, "price_change", minutes=10, price=Decimal("22.00"))
    assert run_worker(CatalogScheduler).claimed == 0  # nothing is due yet
    assert run_worker(CatalogScheduler, at=timezone.now() + timedelta(minutes=11)).outcomes == {
        "applied": 1
    }
    court.refresh_from_db()
    assert court.price == Decimal("22.00")
    # Both due now: the earlier first, whichever the claim meets first.
    run_worker(CatalogScheduler, at=timezone.now() + timedelta(minutes=31))
    court.refresh_from_db()
    assert court.price == Decimal("25.00")
    sooner.refresh_from_db()
    later.refresh_from_db()
    assert (sooner.status, later.status) == ("APPLIED", "APPLIED")
    assert run_worker(CatalogScheduler, at=timezone.now() + timedelta(hours=2)).claimed == 0
    applied = AuditEvent.objects.filter(event="booking.catalog_change.applied")
    assert applied.count() == 2
    resource_rows = AuditEvent.objects.filter(
        event="booking.resource.updated", object_id=str(court.pk)
    )
    assert [row.after_state["price"] for row in resource_rows.order_by("id")] == ["22.00", "25.00"]


@pytest.mark.django_db
def test_opening_slots_lets_customers_hold_them():
    court = ResourceFactory()
    customer = UserFactory(username="kim", groups=["Booking client"])
    start, end = slot(10, days=3)
    Resource.objects.filter(pk=court.pk).update(bookable_until=start)
    with pytest.raises(SlotNotOpen):
        booking_hold_create(resource_id=court.pk, start_time=start, end_time=end, holder=customer)
    schedule(court, "open_slots", bookable_until=start + timedelta(days=30))
    assert run_worker(CatalogScheduler).outcomes == {"applied": 1}
    hold = booking_hold_create(
        resource_id=court.pk, start_time=start, end_time=end, holder=customer
    )
    assert hold.status == "ACTIVE"


@pytest.mark.django_db
def test_a_held_back_change_waits_for_the_earlier_one_and_a_pause_holds_both():
    court = ResourceFactory(price=Decimal("20.00"))
    first = schedule(court, "price_change", minutes=-5, price=Decimal("21.00"))
    second = schedule(court, "price_change", minutes=-1, price=Decimal("23.00"))
    catalog_change_move(change_id=first.pk, move="pause", actor="oncall", reason="price review")
    assert run_worker(CatalogScheduler).outcomes == {"held_back": 1}
    court.refresh_from_db()
    assert court.price == Decimal("20.00")
    catalog_change_move(change_id=first.pk, move="resume", actor="oncall", reason="approved")
    run_worker(CatalogScheduler, at=timezone.now() + timedelta(minutes=2))
    court.refresh_from_db()
    second.refresh_from_db()
    assert (court.price, second.status) == (Decimal("23.00"), "APPLIED")


@pytest.mark.django_db
def test_a_failing_change_keeps_consecutive_failures_up_until_an_operator_acts(settings):
    settings.CATALOG_CHANGE_MAX_ATTEMPTS = 2
    court = ResourceFactory()
    customer = UserFactory(username="lee", groups=["Booking client"])
    booking = BookingFactory(customer=customer, resource=court, hour=10)
    close = schedule(court, "close")
    assert run_worker(CatalogScheduler).outcomes == {"retry_scheduled": 1}
    close.refresh_from_db()
    assert (close.status, close.failure_code) == ("FAILING", "LIVE_BOOKINGS")
    assert str(booking.pk) in close.last_error
    # Runs with nothing due still count as failed while the change is failing.
    run_worker(CatalogScheduler)
    run_worker(CatalogScheduler)
    status = WorkerStatus.objects.get(name="catalog_scheduler")
    assert status.consecutive_failures == 3
    # Its last error says which change and what to fix, not only that something fails.
    assert f"catalog change {close.pk}" in status.last_error
    assert (
        f"LIVE_BOOKINGS: 1 live booking(s) still to come on {court.name} (booking {booking.pk})"
        in (status.last_error)
    )
    assert consecutive_failures_metric() == 3
    run_worker(CatalogScheduler, at=timezone.now() + timedelta(hours=1))
    close.refresh_from_db()
    assert close.status == "PARKED"
    [group] = [g for g in failure_groups() if g.source == "catalog_change"]
    assert group.failure_code == "LIVE_BOOKINGS"
    court.refresh_from_db()
    assert court.active  # nothing was applied

    catalog_change_move(change_id=close.pk, move="cancel", actor="oncall", reason="moved date")
    run_worker(CatalogScheduler)
    assert WorkerStatus.objects.get(name="catalog_scheduler").consecutive_failures == 0
    assert consecutive_failures_metric() == 0


@pytest.mark.django_db
def test_the_kill_switch_pauses_the_scheduler():
    from opsconsole.workers.switches import worker_switch_set

    court = ResourceFactory(price=Decimal("20.00"))
    schedule(court, "price_change", price=Decimal("30.00"))
    worker_switch_set(name="catalog_scheduler", enabled=False, actor="oncall", reason="freeze")
    assert run_worker(CatalogScheduler).skipped
    court.refresh_from_db()
    assert court.price == Decimal("20.00")


@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_apply_each_change_once_in_order():
    courts = [ResourceFactory(price=Decimal("10.00")) for _ in range(3)]
    for court in courts:
        for step in range(1, 6):
            schedule(court, "price_change", minutes=-10 + step, price=Decimal(f"{10 + step}.00"))
    for _ in range(6):  # held-back changes look again a minute later
        run_concurrently(
            lambda n: CatalogScheduler(batch_size=2).run_once(
                triggered_by=f"race-{n}", drain_seconds=3
            ),
            3,
        )
        CatalogChange.objects.filter(status="SCHEDULED").update(next_retry_at=timezone.now())
    assert set(CatalogChange.objects.values_list("status", flat=True)) == {"APPLIED"}
    assert AuditEvent.objects.filter(event="booking.catalog_change.applied").count() == 15
    for court in courts:
        court.refresh_from_db()
        assert court.price == Decimal("15")
        prices = [
            row.after_state["price"]
            for row in AuditEvent.objects.filter(
                event="booking.resource.updated", object_id=str(court.pk)
            ).order_by("id")
        ]
        assert prices == ["11.00", "12.00", "13.00", "14.00", "15.00"]
